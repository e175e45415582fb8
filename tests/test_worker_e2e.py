"""End to end with a real ``manage.py qcluster`` worker: HTTP in, scores out.

The worker runs on the test database in its own process group, with the test
scorers of ``scoring.tests.worker_scorers``. The broker is Redis when REDIS_URL
is set (CI), otherwise the ORM broker.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from rest_framework.authtoken.models import Token

from scoring import services
from scoring.choices import ScoreStatus
from scoring.models import Score
from tests.factories import agent_trace
from tests.worker import run_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FAST_RETRY = {"TRACESCORE_TASK_TIMEOUT": "4", "TRACESCORE_TASK_RETRY": "5"}


@pytest.fixture
def call(live_server, alice):
    token = Token.objects.create(user=alice).key

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            live_server.url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    return call


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


def test_a_worker_killed_mid_batch_leaves_exactly_one_score_per_trace(call, tmp_path):
    traces = [agent_trace() for _ in range(10)]
    env = {**FAST_RETRY, "TEST_SCORER_SLEEP": "0.7"}
    with run_worker(tmp_path / "first.log", **env) as worker:
        status, body = call(
            "POST",
            "/api/trace-scorers/batch",
            {"scorerId": "test-slow", "traceIds": [t.trace_id for t in traces]},
        )
        assert status == 202
        batch_scores = Score.objects.filter(batch_id=body["batchId"])
        wait_for(
            lambda: batch_scores.filter(status=ScoreStatus.SUCCEEDED).count() >= 2,
            timeout=30,
            message=worker.log()[-3000:],
        )
        worker.kill()
    assert batch_scores.filter(status=ScoreStatus.PENDING).exists()

    with run_worker(tmp_path / "second.log", **env) as worker:
        # What the every-minute sweep does, without waiting for its minute.
        time.sleep(1)
        services.requeue_stale_scores(older_than=timedelta(0))
        wait_for(
            lambda: not batch_scores.filter(status=ScoreStatus.PENDING).exists(),
            timeout=40,
            message=worker.log()[-3000:],
        )
    found = scores_of(call, traces)
    assert all(len(r) == 1 and r[0]["status"] == "succeeded" for r in found.values()), found
    assert call("GET", f"/api/trace-scorers/batch/{body['batchId']}")[1]["succeeded"] == 10


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
