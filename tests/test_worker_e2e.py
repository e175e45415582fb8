"""End to end with a real ``manage.py qcluster`` worker: HTTP in, scores out.

The worker runs on the test database in its own process group, with the test
scorers of ``scoring.tests.worker_scorers``. The broker is Redis when REDIS_URL
is set (CI), otherwise the ORM broker.
"""

from __future__ import annotations

import importlib
import os
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule, Task
from rest_framework.authtoken.models import Token

from observability.models import Span
from scoring import services
from scoring.choices import ScoreStatus
from scoring.models import Score, ScoringBatch
from tests.factories import agent_trace
from tests.fake_openai import FakeOpenAI, Reply
from tests.live_server import api_caller
from tests.worker import run_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def call(live_server, alice):
    return api_caller(live_server.url, Token.objects.create(user=alice).key, timeout=10)


@pytest.fixture(autouse=True)
def worker_scorers(settings):
    settings.TRACESCORE_SCORERS = [*settings.TRACESCORE_SCORERS, "scoring.tests.worker_scorers"]


def scores_of(call, traces) -> dict[str, list[dict]]:
    return {
        t.trace_id: call("GET", f"/api/traces/{t.trace_id}/scores")[1]["results"] for t in traces
    }


def test_a_batch_posted_over_http_is_scored_by_the_worker_on_each_root_span(call, tmp_path):
    traces = [agent_trace() for _ in range(10)]
    with run_worker(tmp_path / "worker.log") as worker:
        status, body = call(
            "POST",
            "/api/trace-scorers/batch",
            {"scorerId": "test-answer-length", "traceIds": [t.trace_id for t in traces]},
        )
        assert status == 202 and body["traceCount"] == 10

        def all_scored():
            found = scores_of(call, traces)
            done = all(r and r[0]["status"] != "pending" for r in found.values())
            return found if done else None

        found = wait_for(all_scored, timeout=30, message=worker.log()[-3000:])
    for trace in traces:
        [score] = found[trace.trace_id]
        assert score["status"] == "succeeded" and score["score"] == 1.0
        assert score["spanId"] == trace.root_span_id
        assert score["batchId"] == body["batchId"]
    assert call("GET", f"/api/trace-scorers/batch/{body['batchId']}")[1]["finishedAt"]


def test_several_scorers_score_span_targets_in_a_real_worker_once_each_and_skip_what_does_not_apply(
    call, tmp_path
):
    shop = [agent_trace() for _ in range(2)]
    hello = agent_trace(question="Hi", answer="Hello! How can I help?")
    traces = [*shop, hello]
    targets = []
    for trace in traces:
        for span in trace.spans.exclude(span_type="tool_call"):  # root + two LLM generations
            targets.append({"traceId": trace.trace_id, "spanId": span.span_id})
    targets.append(dict(targets[0]))  # a repeat is scored once
    scorers = ["test-answer-length", "tool-call-accuracy", "completeness"]
    with run_worker(tmp_path / "worker.log") as worker:
        status, body = call(
            "POST",
            "/api/trace-scorers/batch",
            {"scorerIds": scorers, "scopeType": "span", "targets": targets},
        )
        assert status == 202, body
        assert body["scoreCount"] == 27
        assert [(s["scorerId"], s["skipCount"]) for s in body["scorers"]] == [
            ("test-answer-length", 0),
            ("tool-call-accuracy", 6),  # the LLM generations are no agent or workflow runs
            ("completeness", 0),
        ]
        batch_url = f"/api/trace-scorers/batch/{body['batchId']}"
        wait_for(
            lambda: call("GET", batch_url)[1]["status"] == "finished",
            timeout=60,
            message=worker.log()[-3000:],
        )
    batch = call("GET", batch_url)[1]
    assert batch["finishedAt"]
    assert (batch["total"], batch["failed"]) == (27, 0)
    per_scorer = {p["scorerId"]: p for p in batch["perScorer"]}
    assert (
        per_scorer["test-answer-length"]["succeeded"],
        per_scorer["test-answer-length"]["skipped"],
    ) == (9, 0)
    assert (
        per_scorer["tool-call-accuracy"]["succeeded"],
        per_scorer["tool-call-accuracy"]["skipped"],
    ) == (3, 6)
    # "Hi" has no key terms: the worker skips completeness on all three spans of that trace.
    assert (per_scorer["completeness"]["succeeded"], per_scorer["completeness"]["skipped"]) == (
        6,
        3,
    )

    scores = list(Score.objects.filter(batch_id=body["batchId"]))
    keys = Counter((s.scorer_id, s.trace_id, s.span_id) for s in scores)
    assert len(keys) == 27 and set(keys.values()) == {1}
    wanted = {(t["traceId"], t["spanId"]) for t in targets}
    assert {(s.trace_id, s.span_id) for s in scores} == wanted
    for score in scores:
        span = Span.objects.get(trace_id=score.trace_id, span_id=score.span_id)
        assert (score.span_name, score.span_type) == (span.name, span.span_type)
        if score.status == ScoreStatus.SKIPPED:
            assert score.score is None and score.error == "" and score.reason
    on_hello = call("GET", f"/api/traces/{hello.trace_id}/scores?scorerId=completeness")[1]
    assert {r["status"] for r in on_hello["results"]} == {"skipped"}
    assert all("no key terms" in r["reason"] for r in on_hello["results"])


def restore_the_sweep_schedule() -> None:
    """Put back the Schedule row migrate made; flushes between transactional tests drop it."""
    from django.apps import apps

    sweep = importlib.import_module("scoring.migrations.0003_sweep_schedule")
    sweep.add_schedule(apps, None)
    Schedule.objects.filter(func=sweep.FUNC).update(next_run=timezone.now() - timedelta(minutes=1))


def test_a_worker_killed_mid_score_is_recovered_by_the_scheduled_sweep(call, tmp_path):
    restore_the_sweep_schedule()
    traces = [agent_trace() for _ in range(10)]
    env = {
        "TEST_SCORER_SLEEP": "0.7",
        "TRACESCORE_SCORE_LEASE": "3",
        "TRACESCORE_STALE_AFTER": "2",
        # django-q2's own redelivery of unacknowledged tasks (ORM broker) is off,
        # so whatever is recovered here is recovered by the sweep.
        "TRACESCORE_TASK_RETRY": "3600",
    }
    with run_worker(tmp_path / "first.log", **env) as worker:
        status, body = call(
            "POST",
            "/api/trace-scorers/batch",
            {"scorerId": "test-slow", "traceIds": [t.trace_id for t in traces]},
        )
        assert status == 202
        batch_scores = Score.objects.filter(batch_id=body["batchId"])
        wait_for(
            lambda: (
                batch_scores.filter(status=ScoreStatus.SUCCEEDED).count() >= 2
                and batch_scores.filter(lease_expires_at__isnull=False).exists()
            ),
            timeout=30,
            message=worker.log()[-3000:],
        )
        worker.kill()
    killed_mid_score = set(
        batch_scores.filter(status=ScoreStatus.PENDING, lease_expires_at__isnull=False).values_list(
            "pk", flat=True
        )
    )
    assert killed_mid_score

    # The cluster's scheduler runs due schedules about 30 s after it starts.
    with run_worker(tmp_path / "second.log", **env) as worker:
        wait_for(
            lambda: not batch_scores.filter(status=ScoreStatus.PENDING).exists(),
            timeout=90,
            message=worker.log()[-3000:],
        )
    sweeps = Task.objects.filter(func="scoring.tasks.requeue_stale_scores", success=True)
    assert sweeps.exists(), "the scheduled sweep never ran"
    assert sum(task.result["requeued"] for task in sweeps) >= len(killed_mid_score)
    found = scores_of(call, traces)
    assert all(len(r) == 1 and r[0]["status"] == "succeeded" for r in found.values()), found
    assert set(batch_scores.filter(pk__in=killed_mid_score).values_list("attempts", flat=True)) == {
        2
    }
    assert call("GET", f"/api/trace-scorers/batch/{body['batchId']}")[1]["succeeded"] == 10


def test_a_judge_batch_queued_far_longer_than_the_stale_window_ends_with_one_call_per_score(
    call, tmp_path, settings
):
    """The review's case: queue wait many times the stale window, sweeps all along.

    TRACESCORE_E2E_JUDGE_TRACES sets the size (150 by default; 2,000 by hand).
    """
    count = int(os.environ.get("TRACESCORE_E2E_JUDGE_TRACES", "150"))
    stale_window = 1.0
    traces = [agent_trace(answer=f"Your order {i} shipped yesterday.") for i in range(count)]
    with (
        # Bias makes one call when the answer states no opinions: one call per Score.
        FakeOpenAI(default=Reply('{"opinions": []}', delay=0.02)) as judge,
        run_worker(
            tmp_path / "worker.log",
            TRACESCORE_JUDGE_BASE_URL=judge.base_url,
            TRACESCORE_JUDGE_MODEL="judge-test-model",
            TRACESCORE_STALE_AFTER=str(stale_window),
        ) as worker,
    ):
        settings.TRACESCORE_JUDGE_BASE_URL = judge.base_url  # the web side checks it too
        settings.TRACESCORE_JUDGE_MODEL = "judge-test-model"
        settings.TRACESCORE_STALE_AFTER = stale_window
        started = time.monotonic()
        status, body = call(
            "POST",
            "/api/trace-scorers/batch",
            {"scorerId": "bias", "traceIds": [t.trace_id for t in traces]},
        )
        assert status == 202 and body["traceCount"] == count
        batch = ScoringBatch.objects.get(pk=body["batchId"])
        sweeps = []
        while batch.progress()["pending"] and time.monotonic() - started < 60 + count * 0.2:
            sweeps.append(services.requeue_stale_scores())  # the sweep, often
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        progress = call("GET", f"/api/trace-scorers/batch/{body['batchId']}")[1]
        time.sleep(1)  # any late duplicate call would reach the judge by now
        calls = Counter(r.body["messages"][1]["content"] for r in judge.requests)
        print(
            f"\n{count} traces in {elapsed:.1f} s ({count / elapsed:.1f} traces/s): "
            f"{progress['succeeded']} succeeded, {progress['failed']} failed, "
            f"{len(judge.requests)} judge calls, {sum(s['requeued'] for s in sweeps)} requeued "
            f"by {len(sweeps)} sweeps"
        )
        assert progress["pending"] == 0, worker.log()[-3000:]
    assert elapsed > 3 * stale_window  # the last Scores waited several windows
    assert (progress["succeeded"], progress["failed"]) == (count, 0)
    assert len(judge.requests) == count
    assert len(calls) == count and set(calls.values()) == {1}
    assert not any(s["failed"] for s in sweeps)


def test_a_raising_and_a_hanging_scorer_fail_their_traces_and_the_others_are_scored(call, tmp_path):
    ok = [agent_trace(answer="All good.") for _ in range(3)]
    refused = agent_trace(answer="You get a refund.")
    hung = agent_trace(answer="This will hang.")
    traces = [*ok, refused, hung]
    with run_worker(tmp_path / "worker.log", TRACESCORE_SCORER_TIMEOUT="1.5") as worker:
        status, body = call(
            "POST",
            "/api/trace-scorers/batch",
            {"scorerId": "test-picky", "traceIds": [t.trace_id for t in traces]},
        )
        assert status == 202
        wait_for(
            lambda: call("GET", f"/api/trace-scorers/batch/{body['batchId']}")[1]["pending"] == 0,
            timeout=30,
            message=worker.log()[-3000:],
        )
    found = scores_of(call, traces)
    assert [found[t.trace_id][0]["status"] for t in ok] == ["succeeded"] * 3
    assert found[refused.trace_id][0]["error"] == "Refund answers cannot be scored."
    assert found[hung.trace_id][0]["error"] == "The scorer did not finish within 1.5 s."
