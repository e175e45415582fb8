"""Scoring rules end to end: OTLP exports over real HTTP, a real ``qcluster`` worker, and
nobody clicking. The rule is created and changed through the REST API.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from rest_framework.authtoken.models import Token

from observability.models import Span
from observability.services import create_ingest_key
from scoring import rules
from scoring.models import RuleOutcome, Score
from tests.live_server import api_caller
from tests.worker import run_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SETTLE = 2.0


@pytest.fixture(autouse=True)
def rule_settings(settings):
    settings.TRACESCORE_SCORERS = [*settings.TRACESCORE_SCORERS, "scoring.tests.worker_scorers"]
    settings.TRACESCORE_LIVE_SETTLE_SECONDS = SETTLE
    rules.forget_live_rules()
    yield
    rules.forget_live_rules()


@pytest.fixture
def call(live_server, alice):
    return api_caller(live_server.url, Token.objects.create(user=alice).key, timeout=30)


@pytest.fixture
def export(live_server):
    """Send spans as one OTLP/HTTP protobuf export: (trace id, span id, parent, name, kind)."""
    secret = create_ingest_key(name="rules e2e")[1]

    def export(spans: list[dict]) -> None:
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.append(
            KeyValue(key="service.name", value=AnyValue(string_value="shop-support"))
        )
        scope = resource_spans.scope_spans.add()
        now = time.time_ns()
        for item in spans:
            span = OtlpSpan(
                trace_id=bytes.fromhex(item["trace_id"]),
                span_id=bytes.fromhex(item["span_id"]),
                parent_span_id=bytes.fromhex(item.get("parent", "")),
                name=item.get("name", "support-agent"),
                kind=OtlpSpan.SPAN_KIND_INTERNAL,
                start_time_unix_nano=now - 2_000_000_000,
                end_time_unix_nano=now - 1_000_000_000,
            )
            attributes = {
                "openinference.span.kind": item.get("kind", "AGENT"),
                "input.value": "Where is my order 1042?",
                "output.value": item.get("output", "It shipped yesterday."),
            }
            for key, value in attributes.items():
                span.attributes.append(KeyValue(key=key, value=AnyValue(string_value=value)))
            scope.spans.append(span)
        http = urllib.request.Request(
            f"{live_server.url}/v1/traces",
            method="POST",
            data=request.SerializeToString(),
            headers={
                "Authorization": f"Bearer {secret}",
                "Content-Type": "application/x-protobuf",
            },
        )
        with urllib.request.urlopen(http, timeout=60) as answer:
            assert answer.status == 200

    return export


def ids(n: int) -> str:
    return os.urandom(n).hex()


def test_a_live_rule_scores_a_trace_once_it_finished_and_never_before_its_root(
    call, export, tmp_path
):
    status, rule = call(
        "POST",
        "/api/scoring-rules",
        {
            "name": "Answer length",
            "scorerIds": ["test-answer-length"],
            "filter": {"type": "agent_run"},
        },
    )
    assert status == 201, rule
    trace_id, root_id = ids(16), ids(8)
    with run_worker(tmp_path / "worker.log") as worker:
        export(
            [
                {"trace_id": trace_id, "span_id": ids(8), "parent": root_id, "kind": "LLM"},
                {"trace_id": trace_id, "span_id": ids(8), "parent": root_id, "kind": "TOOL"},
            ]
        )
        time.sleep(SETTLE + 1.5)  # children alone, however long: the trace is not finished
        assert not Score.objects.exists()
        assert not RuleOutcome.objects.exists()

        export([{"trace_id": trace_id, "span_id": root_id}])  # the root, last
        time.sleep(SETTLE / 2)
        late_id = ids(8)
        export([{"trace_id": trace_id, "span_id": late_id, "parent": root_id, "kind": "LLM"}])
        score = wait_for(
            lambda: Score.objects.filter(trace_id=trace_id, status="succeeded").first(),
            timeout=30,
            message=worker.log()[-3000:],
        )
        root = Span.objects.get(trace_id=trace_id, span_id=root_id)
        late = Span.objects.get(trace_id=trace_id, span_id=late_id)
        assert score.created_at > root.received_at  # after the root, never before it
        # The late child inside the settle window was waited for: the scorer saw it.
        assert score.created_at >= late.received_at + timedelta(seconds=SETTLE)
        assert rules.late_spans(score) == 0
        latency = (score.finished_at - late.received_at).total_seconds()
        assert latency < SETTLE + 2, latency
        _, scores = call("GET", f"/api/traces/{trace_id}/scores")
        assert [(s["source"], s["ruleId"], s["score"]) for s in scores["results"]] == [
            ("rule", rule["id"], 1.0)
        ]
        # A span after scoring is noted on the score, and not scored again.
        export([{"trace_id": trace_id, "span_id": ids(8), "parent": root_id, "kind": "TOOL"}])
        time.sleep(SETTLE + 1.5)
        assert Score.objects.filter(trace_id=trace_id).count() == 1
        assert rules.late_spans(score) == 1
    _, audit = call("GET", f"/api/scoring-rules/{rule['id']}/audit")
    assert [(r["traceId"], r["outcome"], r["scoreId"]) for r in audit["results"]] == [
        (trace_id, "scored", score.pk)
    ]


def test_a_half_sampled_rule_scores_half_of_1000_traces_and_a_paused_rule_stops(
    call, export, tmp_path
):
    status, rule = call(
        "POST",
        "/api/scoring-rules",
        {"name": "Half", "scorerIds": ["test-answer-length"], "filter": {}, "sampleRate": 0.5},
    )
    assert status == 201
    traces = [ids(16) for _ in range(1000)]
    with run_worker(tmp_path / "worker.log", TRACESCORE_WORKERS="2") as worker:
        for start in range(0, 1000, 250):
            export([{"trace_id": t, "span_id": ids(8)} for t in traces[start : start + 250]])

        def settled():
            _, body = call("GET", f"/api/scoring-rules/{rule['id']}")
            stats = body["stats"]
            return stats if stats["considered"] == 1000 and stats["pending"] == 0 else None

        stats = wait_for(settled, timeout=120, interval=1, message=worker.log()[-3000:])
        assert 450 <= stats["scored"] <= 550
        assert stats["sampledOut"] == 1000 - stats["scored"]
        _, audit = call("GET", f"/api/scoring-rules/{rule['id']}/audit?outcome=sampled_out")
        assert audit["count"] == 1000 - stats["scored"]
        assert {r["reason"] for r in audit["results"]} == {"sampled out at 50 %"}

        status, _ = call("PATCH", f"/api/scoring-rules/{rule['id']}", {"active": False})
        assert status == 200
        rules.forget_live_rules()  # the ingest process's short cache (the web server here)
        paused = [ids(16) for _ in range(5)]
        export([{"trace_id": t, "span_id": ids(8)} for t in paused])
        time.sleep(SETTLE + 3)
        assert not RuleOutcome.objects.filter(trace_id__in=paused).exists()
        assert not Score.objects.filter(trace_id__in=paused).exists()


def test_failed_scores_are_retried_in_one_call_once_the_scorer_is_fixed(call, export, tmp_path):
    flag = tmp_path / "broken"
    flag.write_text("broken")
    status, rule = call(
        "POST",
        "/api/scoring-rules",
        {"name": "Flaky", "scorerIds": ["test-broken-until-fixed"], "filter": {}},
    )
    assert status == 201
    traces = [ids(16) for _ in range(3)]
    with run_worker(tmp_path / "worker.log", TEST_SCORER_BROKEN_FLAG=str(flag)) as worker:
        export([{"trace_id": t, "span_id": ids(8)} for t in traces])

        def stats():
            return call("GET", f"/api/scoring-rules/{rule['id']}")[1]["stats"]

        wait_for(lambda: stats()["failed"] == 3, timeout=30, message=worker.log()[-3000:])
        failed_ids = sorted(Score.objects.values_list("pk", flat=True))
        flag.unlink()  # the scorer is fixed
        assert call("POST", f"/api/scoring-rules/{rule['id']}/retry") == (202, {"count": 3})
        wait_for(lambda: stats()["scored"] == 3, timeout=30, message=worker.log()[-3000:])
    scores = list(Score.objects.order_by("pk"))
    assert [s.pk for s in scores] == failed_ids  # the same rows, scored now
    assert {(s.status, s.score, s.error, s.attempts) for s in scores} == {
        ("succeeded", 0.75, "", 2)
    }
