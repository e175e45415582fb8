"""Liveness of scoring work: claims, leases and the sweep, without a worker process.

Tasks run in django-q2 sync mode (inside ``async_task``) unless a test says
``no_worker()``: then they stay in the broker, as when no worker is running.
The same behaviour through a real ``qcluster`` is in tests/test_worker_e2e.py.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf

from scoring import services, tasks
from scoring.choices import ScoreStatus
from scoring.models import Score, ScoringBatch
from scoring.tests import worker_scorers
from tests.factories import agent_trace
from tests.worker import no_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def test_scorers(monkeypatch):
    get_broker().purge_queue()  # the broker may be a Redis shared with other tests
    monkeypatch.setattr(Conf, "SYNC", True)
    monkeypatch.setenv("TEST_SCORER_SLEEP", "0")
    worker_scorers.slow_calls.clear()
    with override_settings(
        TRACESCORE_SCORERS=["scoring.tests.worker_scorers"],
        TRACESCORE_SCORER_TIMEOUT=5,
        TRACESCORE_STALE_AFTER=60,
    ):
        yield
    get_broker().purge_queue()


def start(count: int = 1, scorer_id: str = "test-slow") -> ScoringBatch:
    traces = [agent_trace() for _ in range(count)]
    return services.start_batch(scorer_id=scorer_id, trace_ids=[t.trace_id for t in traces])


def expire_leases(batch: ScoringBatch) -> None:
    """What time does to the lease of a worker that died: it runs out."""
    Score.objects.filter(batch=batch, lease_expires_at__isnull=False).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_score_waiting_its_turn_is_never_queued_again_or_failed_however_long_it_waits():
    with no_worker():
        batch = start(3)
        Score.objects.update(queued_at=timezone.now() - timedelta(days=1))
        for _ in range(5):
            assert services.requeue_stale_scores() == {"requeued": 0, "failed": 0}
    assert get_broker().queue_size() == 1  # one task for the chunk of 3 Scores, no more
    assert batch.progress() == {
        "total": 3,
        "pending": 3,
        "queued": 3,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "skipped": 0,
        "done": 0,
    }
    assert set(Score.objects.values_list("attempts", flat=True)) == {0}


def test_a_score_whose_task_the_broker_lost_is_queued_again_and_scored_once():
    with no_worker():
        batch = start(1)
    get_broker().purge_queue()  # e.g. Redis restarted without persistence
    assert services.requeue_stale_scores() == {"requeued": 0, "failed": 0}  # not yet stale
    Score.objects.update(queued_at=timezone.now() - timedelta(minutes=2))
    assert services.requeue_stale_scores() == {"requeued": 1, "failed": 0}
    score = Score.objects.get(batch=batch)
    assert (score.status, score.attempts) == (ScoreStatus.SUCCEEDED, 1)
    assert worker_scorers.slow_calls == [score.trace_id]


def test_a_score_whose_worker_died_is_handed_on_and_the_dead_run_cannot_record(api_client):
    with no_worker():
        batch = start(2)
    score, other = Score.objects.filter(batch=batch).order_by("pk")
    dead_run = services.claim_score(score_id=score.pk)  # a worker starts it, then is killed
    assert dead_run
    shown = api_client.get(f"/api/trace-scorers/batch/{batch.pk}").json()
    assert (shown["status"], shown["pending"], shown["queued"], shown["running"]) == (
        "running",
        2,
        1,
        1,
    )
    [listed] = api_client.get(f"/api/traces/{score.trace_id}/scores").json()["results"]
    assert (listed["status"], listed["startedAt"] is not None) == ("pending", True)
    assert services.requeue_stale_scores(older_than=timedelta(0)) == {"requeued": 0, "failed": 0}

    expire_leases(batch)
    with no_worker():
        assert services.requeue_stale_scores() == {"requeued": 1, "failed": 0}
    late = services.Outcome(score=0.0, reason="from a run nobody waits for any more")
    assert not services.record_score(score_id=score.pk, claim=dead_run, outcome=late)
    score.refresh_from_db()
    assert (score.status, score.claimed_by, score.score) == (ScoreStatus.PENDING, "", None)

    assert tasks.score_trace(score.pk) == "succeeded"  # the requeued task
    score.refresh_from_db()
    assert (score.status, score.attempts, score.score) == (ScoreStatus.SUCCEEDED, 2, 0.5)
    assert not services.record_score(score_id=score.pk, claim=dead_run, outcome=late)
    assert Score.objects.get(pk=score.pk).reason == "Took a while."


def test_a_score_whose_workers_keep_dying_fails_with_a_message_and_finishes_the_batch(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "max_attempts": 2}
    with no_worker():
        batch = start(1)
        score = Score.objects.get(batch=batch)
        for _ in range(2):
            assert services.claim_score(score_id=score.pk)
            expire_leases(batch)
            result = services.requeue_stale_scores()
        assert result == {"requeued": 0, "failed": 1}
    score.refresh_from_db()
    assert score.status == ScoreStatus.FAILED
    assert score.error == (
        "Gave up after 2 attempts: the worker running this score stopped before it "
        "finished, each time."
    )
    batch.refresh_from_db()
    assert batch.finished_at is not None


def test_a_score_that_finishes_while_the_sweep_gives_up_on_it_keeps_its_result(
    settings, monkeypatch
):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "max_attempts": 1}
    with no_worker():
        batch = start(1)
    score = Score.objects.get(batch=batch)
    slow_run = services.claim_score(score_id=score.pk)
    expire_leases(batch)
    give_up = services._give_up

    def worker_finishes_first(**kwargs):
        # The slow worker records between the sweep's read and its UPDATE.
        outcome = services.Outcome(score=0.5, reason="Made it.")
        assert services.record_score(score_id=score.pk, claim=slow_run, outcome=outcome)
        return give_up(**kwargs)

    monkeypatch.setattr(services, "_give_up", worker_finishes_first)
    assert services.requeue_stale_scores() == {"requeued": 0, "failed": 0}
    score.refresh_from_db()
    assert (score.status, score.score, score.error) == (ScoreStatus.SUCCEEDED, 0.5, "")


def test_a_second_delivery_while_the_first_run_scores_does_not_call_the_scorer_again(
    monkeypatch,
):
    monkeypatch.setenv("TEST_SCORER_SLEEP", "0.6")
    with no_worker():
        batch = start(1)
    score = Score.objects.get(batch=batch)
    results = []

    def first_delivery():
        try:
            results.append(tasks.score_trace(score.pk))
        finally:
            connection.close()

    first = threading.Thread(target=first_delivery)
    first.start()
    deadline = time.monotonic() + 5
    while not worker_scorers.slow_calls and time.monotonic() < deadline:
        time.sleep(0.01)
    second = tasks.score_trace(score.pk)  # the broker delivers the task again
    first.join()
    assert second == "skipped: finished, gone or held by another run"
    assert results == ["succeeded"]
    assert worker_scorers.slow_calls == [score.trace_id]
    score.refresh_from_db()
    assert (score.status, score.attempts) == (ScoreStatus.SUCCEEDED, 1)


def test_deleting_the_traces_of_a_batchs_last_pending_scores_finishes_the_batch(admin_client):
    with no_worker():
        batch = start(3)
    first, *rest = Score.objects.filter(batch=batch).order_by("pk")
    tasks.score_trace(first.pk)
    batch.refresh_from_db()
    assert batch.finished_at is None

    response = admin_client.post(
        "/admin/observability/trace/",
        {
            "action": "delete_selected",
            "_selected_action": [s.trace_id for s in rest],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.finished_at is not None
    assert batch.progress()["pending"] == 0


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite runs one write transaction at a time, so the race cannot happen there",
)
def test_two_workers_finishing_the_last_two_scores_at_once_finish_the_batch(monkeypatch):
    with no_worker():
        batch = start(2)
    ids = list(Score.objects.filter(batch=batch).values_list("pk", flat=True))
    claims = {pk: services.claim_score(score_id=pk) for pk in ids}
    both_scored = threading.Barrier(2, timeout=10)
    finish = services.finish_batch_if_done

    def in_step(**kwargs):
        # Both Scores are updated and not committed yet; both look at the batch,
        # and neither commits before the other has looked (without the lock).
        both_scored.wait()
        finish(**kwargs)
        time.sleep(0.3)

    monkeypatch.setattr(services, "finish_batch_if_done", in_step)

    def record(pk):
        try:
            services.record_score(
                score_id=pk, claim=claims[pk], outcome=services.Outcome(score=1.0, reason="ok")
            )
        finally:
            connection.close()

    workers = [threading.Thread(target=record, args=(pk,)) for pk in ids]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    batch.refresh_from_db()
    assert batch.progress()["succeeded"] == 2
    assert batch.finished_at is not None


@pytest.mark.django_db  # runs before the transactional tests, which empty every table
def test_the_sweep_is_scheduled_every_minute_by_migrate():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(func="scoring.tasks.requeue_stale_scores")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 1, -1)
    assert schedule.next_run is not None


@pytest.mark.django_db
def test_a_lease_shorter_than_the_task_timeout_is_reported_at_start_up(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 120}
    call_command(
        "check", "--tag", "scoring", "--fail-level", "WARNING"
    )  # the defaults are consistent
    settings.TRACESCORE_SCORE_LEASE = 90
    with pytest.raises(SystemCheckError, match="scoring.W002.*a judge called twice"):
        call_command("check", "--tag", "scoring", "--fail-level", "WARNING")
