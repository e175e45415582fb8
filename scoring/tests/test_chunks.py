"""Scoring in chunks: one task claims, scores and records many Scores.

Tasks stay in the broker (no worker runs them) until a test runs a chunk itself
with ``tasks.score_chunk``, as a worker would; the sweep runs its tasks inside
``async_task`` (django-q2 sync mode) unless ``no_worker()`` holds them.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
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
    get_broker().purge_queue()
    monkeypatch.setattr(Conf, "SYNC", True)
    monkeypatch.setenv("TEST_SCORER_SLEEP", "0")
    worker_scorers.slow_calls.clear()
    with override_settings(
        TRACESCORE_SCORERS=["scoring.tests.worker_scorers"],
        TRACESCORE_SCORER_TIMEOUT=5,
        TRACESCORE_SCORE_CHUNK=50,
    ):
        yield
    get_broker().purge_queue()


def start(count: int, scorer_id: str = "test-slow") -> tuple[ScoringBatch, list[int]]:
    """A batch whose tasks wait in the broker; its Score ids."""
    traces = [agent_trace() for _ in range(count)]
    with no_worker():
        batch = services.start_batch(scorer_id=scorer_id, trace_ids=[t.trace_id for t in traces])
    ids = list(Score.objects.filter(batch=batch).order_by("pk").values_list("pk", flat=True))
    return batch, ids


def test_a_batch_is_queued_as_one_task_per_chunk(settings):
    settings.TRACESCORE_SCORE_CHUNK = 4
    batch, ids = start(10)
    assert get_broker().queue_size() == 3  # 4 + 4 + 2
    assert tasks.score_chunk(ids[:4]) == "4 succeeded"
    assert batch.progress()["succeeded"] == 4


def test_a_chunk_delivered_twice_scores_each_score_once(monkeypatch):
    monkeypatch.setenv("TEST_SCORER_SLEEP", "0.3")
    batch, ids = start(4)
    results = []

    def first_delivery():
        try:
            results.append(tasks.score_chunk(ids))
        finally:
            connection.close()

    first = threading.Thread(target=first_delivery)
    first.start()
    deadline = time.monotonic() + 5
    while not worker_scorers.slow_calls and time.monotonic() < deadline:
        time.sleep(0.01)
    second = tasks.score_chunk(ids)  # the broker delivers the same chunk again
    first.join()
    assert second == "skipped: finished, gone or held by another run"
    assert results == ["4 succeeded"]
    assert sorted(worker_scorers.slow_calls) == sorted(
        Score.objects.filter(pk__in=ids).values_list("trace_id", flat=True)
    )
    assert set(Score.objects.filter(pk__in=ids).values_list("status", "attempts")) == {
        (ScoreStatus.SUCCEEDED, 1)
    }
    batch.refresh_from_db()
    assert batch.finished_at is not None


def test_a_claim_takes_only_the_scores_no_live_run_holds():
    _, ids = start(4)
    first_claim, first = services.claim_scores(score_ids=ids[:2])
    second_claim, second = services.claim_scores(score_ids=ids)
    assert [s.pk for s in first] == ids[:2]
    assert [s.pk for s in second] == ids[2:]
    assert first_claim != second_claim
    assert services.claim_scores(score_ids=ids)[1] == []
    assert set(Score.objects.values_list("attempts", flat=True)) == {1}


def test_code_scores_of_a_chunk_are_recorded_together_with_a_few_statements():
    batch, ids = start(40, scorer_id="test-answer-length")
    with CaptureQueriesContext(connection) as queries:
        assert tasks.score_chunk(ids) == "40 succeeded"
    scores = list(Score.objects.filter(pk__in=ids))
    assert {(s.status, s.score, s.reason) for s in scores} == {
        (ScoreStatus.SUCCEEDED, 1.0, "Checked the answer.")
    }
    assert all(s.span_id and s.span_name and s.finished_at for s in scores)
    assert all(s.lease_expires_at is None and s.duration_ms is not None for s in scores)
    batch.refresh_from_db()
    assert batch.finished_at is not None
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    if connection.vendor == "postgresql":
        # claim, one UPDATE … FROM VALUES for all 40, finishing the batch
        assert len(updates) == 3, updates
        assert len(queries.captured_queries) <= 12
    else:  # one UPDATE per Score, in one transaction
        assert len(updates) == 42


def test_one_scores_failure_or_time_limit_does_not_touch_the_others_in_its_chunk(settings):
    settings.TRACESCORE_SCORER_TIMEOUT = 0.5
    traces = [agent_trace(answer=text) for text in ("fine", "refund please", "hang on", "ok")]
    with no_worker():
        batch = services.start_batch(scorer_id="test-picky", trace_ids=[t.trace_id for t in traces])
    ids = list(Score.objects.filter(batch=batch).values_list("pk", flat=True))
    started = time.monotonic()
    assert tasks.score_chunk(ids) == "2 failed, 2 succeeded"
    assert time.monotonic() - started < 3
    by_trace = {s.trace_id: s for s in Score.objects.filter(batch=batch)}
    outcomes = [(by_trace[t.trace_id].status, by_trace[t.trace_id].error) for t in traces]
    assert outcomes == [
        (ScoreStatus.SUCCEEDED, ""),
        (ScoreStatus.FAILED, "Refund answers cannot be scored."),
        (ScoreStatus.FAILED, "The scorer did not finish within 0.5 s."),
        (ScoreStatus.SUCCEEDED, ""),
    ]


def test_a_score_the_pre_run_hook_stops_is_skipped_with_its_reason_and_never_scored(
    monkeypatch,
):
    batch, ids = start(3)
    stopped = Score.objects.get(pk=ids[1])
    monkeypatch.setattr(
        services,
        "pre_run_skip_reason",
        lambda score: "cost cap reached" if score.pk == stopped.pk else None,
    )
    assert tasks.score_chunk(ids) == "1 skipped, 2 succeeded"
    stopped.refresh_from_db()
    assert (stopped.status, stopped.reason, stopped.score) == (
        ScoreStatus.SKIPPED,
        "cost cap reached",
        None,
    )
    assert stopped.trace_id not in worker_scorers.slow_calls
    assert len(worker_scorers.slow_calls) == 2
    assert batch.progress()["skipped"] == 1


def test_the_sweep_queues_again_a_chunk_whose_worker_died_and_it_is_scored_once():
    batch, ids = start(5)
    get_broker().purge_queue()  # the worker took the task…
    dead_claim, claimed = services.claim_scores(score_ids=ids)  # …claimed the chunk, then died
    assert len(claimed) == 5
    assert services.requeue_stale_scores() == {"requeued": 0, "failed": 0}  # leases still run

    Score.objects.filter(batch=batch).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with no_worker():
        assert services.requeue_stale_scores() == {"requeued": 5, "failed": 0}
    assert get_broker().queue_size() == 1  # the five again, as one chunk
    late = services.Outcome(score=0.0, reason="from the dead run")
    assert services.record_scores(claim=dead_claim, outcomes=dict.fromkeys(ids, late)) == set()

    get_broker().purge_queue()
    Score.objects.filter(batch=batch).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.requeue_stale_scores() == {"requeued": 5, "failed": 0}  # runs it here
    assert set(Score.objects.filter(batch=batch).values_list("status", "score", "attempts")) == {
        (ScoreStatus.SUCCEEDED, 0.5, 2)
    }
    assert len(worker_scorers.slow_calls) == 5
    batch.refresh_from_db()
    assert batch.finished_at is not None


def test_a_score_queued_by_an_older_version_as_one_task_is_still_scored():
    _, ids = start(2)
    assert tasks.score_trace(ids[0]) == "succeeded"
    assert tasks.score_trace(ids[0]) == "skipped: finished, gone or held by another run"
    assert Score.objects.get(pk=ids[1]).status == ScoreStatus.PENDING


def test_scores_that_could_not_finish_before_the_task_timeout_are_handed_back_unstarted(settings):
    # A scorer may take 1 s and the task is killed at 2 s: past 2 - 1 - 5 s
    # (already), only the first Score may start.
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 2}
    settings.TRACESCORE_SCORER_TIMEOUT = 1
    batch, ids = start(3)
    get_broker().purge_queue()
    with no_worker():
        assert tasks.score_chunk(ids) == "2 handed back, 1 succeeded"
    assert len(worker_scorers.slow_calls) == 1
    rows = list(
        Score.objects.filter(pk__in=ids)
        .order_by("pk")
        .values_list("status", "attempts", "claimed_by")
    )
    assert rows == [
        (ScoreStatus.SUCCEEDED, 1, rows[0][2]),
        (ScoreStatus.PENDING, 0, ""),
        (ScoreStatus.PENDING, 0, ""),
    ]
    assert get_broker().queue_size() == 1  # the two, queued again as one chunk
    assert tasks.score_chunk(ids[1:]) == "1 handed back, 1 succeeded"
