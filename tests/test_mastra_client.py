"""Mastra's own client (@mastra/client-js) against our Mastra scoring endpoints.

``tests/node/mastra/score.mjs`` calls ``client.score()`` and
``client.listScoresBySpan()`` on a live server, with a real ``qcluster``
worker doing the scoring, and checks both answers with Mastra's own zod
schemas (``@mastra/core/storage``).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from rest_framework.authtoken.models import Token

from observability.tests.test_ingest_mastra import MASTRA, node_binary
from scoring.models import Score
from tests.factories import agent_trace
from tests.worker import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_mastras_client_scores_a_span_and_lists_its_scores(live_server, alice, tmp_path):
    node = node_binary()
    if not (MASTRA / "node_modules" / "@mastra" / "client-js").is_dir():
        pytest.skip("@mastra/client-js is not installed: run `npm ci --prefix tests/node/mastra`.")
    trace = agent_trace()
    llm = trace.spans.filter(span_type="llm_generation").last()
    token = Token.objects.create(user=alice).key
    env = {
        **os.environ,
        "BASE_URL": live_server.url,
        "TOKEN": token,
        "SCORER": "Error free",  # a scorer's name, as Mastra users name scorers
        "TRACE_ID": trace.trace_id,
        "SPAN_ID": llm.span_id,
    }
    with run_worker(tmp_path / "worker.log") as worker:
        run = subprocess.run(
            [str(node), "score.mjs"],
            cwd=MASTRA,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert run.returncode == 0, run.stderr[-3000:] + worker.log()[-2000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["started"] == {
        "status": "success",
        "message": "Scoring started for 2 traces",
        "traceCount": 2,
    }
    [row] = answer["listed"]["scores"]
    assert (row["traceId"], row["spanId"], row["scorerId"]) == (
        trace.trace_id,
        llm.span_id,
        "error-free",
    )
    assert row["score"] == 1.0 and row["entityType"] == "model_generation"
    assert answer["listed"]["pagination"]["total"] == 1
    assert answer["refused"]["status"] == 404
    assert answer["refused"]["body"]["error"] == "Scorer 'no-such-scorer' not found"
    assert set(Score.objects.values_list("span_id", flat=True)) == {
        llm.span_id,
        trace.root_span_id,
    }
