"""Scoring spans, not only traces, with several scorers at once: service, task and API.

Tasks run in django-q2's sync mode; the real-worker run is in tests/test_worker_e2e.py.
"""

from __future__ import annotations

import pytest

from observability.models import Span
from scoring import services
from scoring.choices import ScoreStatus
from scoring.inputs import scoring_input_from_spans
from scoring.models import Score, ScoringBatch
from scoring.scorers.base import SpanSummary
from tests.factories import agent_trace, new_span_id, new_trace_id

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_scorers")]

BATCH = "/api/trace-scorers/batch"


def llm_spans(trace) -> list[Span]:
    return list(trace.spans.filter(span_type="llm_generation").order_by("started_at"))


def test_every_llm_generation_of_the_traces_is_scored_by_each_scorer_and_the_rest_skip(
    api_client, sync_tasks
):
    one, two = agent_trace(), agent_trace(answer="Your parcel arrives Friday.")
    with sync_tasks(execute=True):
        answer = api_client.post(
            BATCH,
            {
                "scorerIds": ["json-validity", "tool-call-accuracy"],
                "scopeType": "span",
                "traceIds": [one.trace_id, two.trace_id],
                "spanType": "llm_generation",
            },
            format="json",
        )
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert body["message"] == "Scoring started for 4 spans in 2 traces with 2 scorers"
    assert body["status"] == "initiated"
    assert body["traceCount"] == 2 and body["scoreCount"] == 8
    assert body["scorers"] == [
        {
            "scorerId": "json-validity",
            "scorerName": "JSON validity",
            "scoreCount": 4,
            "skipCount": 0,
        },
        {
            "scorerId": "tool-call-accuracy",
            "scorerName": "Tool-call accuracy",
            "scoreCount": 4,
            "skipCount": 4,
        },
    ]
    scores = Score.objects.filter(batch_id=body["batchId"])
    wanted = {(s.trace_id, s.span_id) for t in (one, two) for s in llm_spans(t)}
    for scorer_id in ("json-validity", "tool-call-accuracy"):
        mine = scores.filter(scorer_id=scorer_id)
        assert {(s.trace_id, s.span_id) for s in mine} == wanted
        assert {(s.span_name, s.span_type) for s in mine} == {
            ("chat gpt-4o-mini", "llm_generation")
        }
    assert set(scores.filter(scorer_id="json-validity").values_list("status", flat=True)) == {
        ScoreStatus.SUCCEEDED
    }
    skipped = scores.filter(scorer_id="tool-call-accuracy")
    assert {s.status for s in skipped} == {ScoreStatus.SKIPPED}
    assert {s.score for s in skipped} == {None}
    assert {s.reason for s in skipped} == {
        "Tool-call accuracy applies to agent run, workflow run, workflow step spans, "
        "not to a llm generation span."
    }
    batch = api_client.get(f"{BATCH}/{body['batchId']}").json()
    assert batch["status"] == "finished"
    assert (batch["total"], batch["succeeded"], batch["failed"], batch["skipped"]) == (8, 4, 0, 4)
    assert [(p["scorerId"], p["succeeded"], p["skipped"]) for p in batch["perScorer"]] == [
        ("json-validity", 4, 0),
        ("tool-call-accuracy", 0, 4),
    ]
    stats = {s["id"]: s for s in api_client.get("/api/scorers").json()}["tool-call-accuracy"]
    assert stats["failedCount"] == 0 and stats["skippedCount"] == 4


def test_exact_targets_are_scored_a_missing_span_id_means_the_root_and_unknown_ones_are_listed(
    api_client, sync_tasks
):
    trace = agent_trace()
    first, last = llm_spans(trace)
    missing_trace, missing_span = new_trace_id(), new_span_id()
    targets = [
        {"traceId": trace.trace_id, "spanId": last.span_id},
        {"traceId": trace.trace_id},
        {"traceId": trace.trace_id, "spanId": last.span_id.upper()},  # a repeat
        {"traceId": trace.trace_id, "spanId": missing_span},
        {"traceId": missing_trace, "spanId": first.span_id},
    ]
    with sync_tasks(execute=True):
        answer = api_client.post(
            BATCH,
            {"scorerIds": ["test-answer-length"], "scopeType": "span", "targets": targets},
            format="json",
        )
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert body["scoreCount"] == 2 and body["traceCount"] == 1
    assert body["unknownTargets"] == [
        {"traceId": trace.trace_id, "spanId": missing_span},
        {"traceId": missing_trace, "spanId": first.span_id},
    ]
    assert body["unknownTraceIds"] == [missing_trace]
    scores = {s.span_id: s for s in Score.objects.filter(batch_id=body["batchId"])}
    assert set(scores) == {last.span_id, trace.root_span_id}
    assert scores[trace.root_span_id].span_type == "agent_run"
    assert {s.status for s in scores.values()} == {ScoreStatus.SUCCEEDED}
    # The LLM span was scored on its own output, not the trace's answer.
    assert scores[last.span_id].output == last.output


@pytest.mark.usefixtures("test_scorers")
def test_a_span_scorer_sees_its_subtree_and_the_whole_trace_as_context():
    trace_id, root, step_a, step_b = new_trace_id(), new_span_id(), new_span_id(), new_span_id()

    def s(span_id, parent, name, kind, status="ok", **extra):
        return SpanSummary(span_id, parent, name, kind, status, **extra)

    spans = [
        s(root, None, "agent", "agent_run", input="Refund order 7", output="Done."),
        s(step_a, root, "step a", "workflow_step"),
        s(new_span_id(), step_a, "lookup", "tool_call", "error", error_message="timeout"),
        s(step_b, root, "step b", "workflow_step", input="refund", output="refunded"),
        s(new_span_id(), step_b, "refund", "tool_call", input={"order": 7}),
    ]
    data = scoring_input_from_spans(trace_id, spans, step_b, scope="span")
    assert (data.span_id, data.scope, data.output_text) == (step_b, "span", "refunded")
    assert [c.name for c in data.tool_calls] == ["refund"]
    assert data.error_spans == ()  # step a's failed lookup is not step b's
    assert len(data.spans) == 5  # the whole trace, as context
    whole = scoring_input_from_spans(trace_id, spans)
    assert [c.name for c in whole.tool_calls] == ["lookup", "refund"]
    assert [e.name for e in whole.error_spans] == ["lookup"]


def test_completeness_skips_a_question_without_key_terms_instead_of_scoring_it(
    api_client, sync_tasks, settings
):
    settings.TRACESCORE_SCORER_TIMEOUT = 30  # the first lemma lookup loads simplemma's data
    trace = agent_trace(question="Hi", answer="bananas")
    with sync_tasks(execute=True):
        answer = api_client.post(
            BATCH, {"scorerId": "completeness", "traceIds": [trace.trace_id]}, format="json"
        )
    score = Score.objects.get(batch_id=answer.json()["batchId"])
    assert score.status == ScoreStatus.SKIPPED, score.error
    assert score.score is None and score.error == ""
    assert "no key terms" in score.reason
    batch = ScoringBatch.objects.get()
    assert batch.finished_at is not None
    assert batch.progress()["failed"] == 0 and batch.progress()["skipped"] == 1


def test_the_preview_says_how_many_targets_each_scorer_skips_and_starts_nothing(api_client):
    trace = agent_trace()
    answer = api_client.post(
        f"{BATCH}/preview",
        {
            "scorerIds": ["completeness", "tool-call-accuracy", "latency"],
            "scopeType": "span",
            "targets": [
                {"traceId": trace.trace_id, "spanId": s.span_id} for s in trace.spans.all()
            ],
        },
        format="json",
    )
    assert answer.status_code == 200, answer.content
    skips = {
        row["scorerId"]: (row["scoreCount"], row["skipCount"]) for row in answer.json()["scorers"]
    }
    # 4 spans: the agent run, two LLM generations, one tool call.
    assert skips == {"completeness": (4, 1), "tool-call-accuracy": (4, 3), "latency": (4, 0)}
    assert answer.json()["scoreCount"] == 12
    assert not ScoringBatch.objects.exists() and not Score.objects.exists()


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        (
            {"scorerId": "latency", "scorerIds": ["latency"], "traceIds": ["a" * 32]},
            400,
            "exactly one",
        ),
        ({"scorerIds": [], "traceIds": ["a" * 32]}, 400, "scorerIds"),
        (
            {"scorerIds": ["latency", "nope"], "traceIds": ["a" * 32]},
            404,
            "No scorer with id 'nope'",
        ),
        ({"scorerIds": ["latency"] * 21, "traceIds": ["a" * 32]}, 400, "20"),
        (
            {"scorerId": "latency", "scopeType": "span", "traceIds": ["a" * 32]},
            400,
            "needs targets",
        ),
        (
            {"scorerId": "latency", "scopeType": "span", "traceIds": ["a" * 32], "spanType": "x"},
            400,
            "not a valid choice",
        ),
        (
            {"scorerId": "latency", "traceIds": ["a" * 32], "spanType": "tool_call"},
            400,
            "spanType needs scopeType 'span'",
        ),
        (
            {"scorerId": "latency", "targets": [{"traceId": "a" * 32}]},
            400,
            "targets need scopeType 'span'",
        ),
        (
            {
                "scorerId": "latency",
                "scopeType": "span",
                "targets": [{"traceId": "a" * 32}],
                "spanType": "tool_call",
            },
            400,
            "not both",
        ),
        (
            {
                "scorerId": "latency",
                "scopeType": "span",
                "targets": [{"traceId": "a" * 32, "spanId": "zz"}],
            },
            400,
            "16 hexadecimal",
        ),
        ({"scorerId": "latency", "scopeType": "span", "targets": "all"}, 400, "non-empty list"),
        ({"scorerId": "latency", "scopeType": "span", "targets": []}, 400, "non-empty list"),
        (
            {"scorerId": "latency", "scopeType": "span", "targets": [{"traceId": "a" * 32}]},
            404,
            "None of the 1 targets is a known span",
        ),
        (
            {
                "scorerId": "latency",
                "scopeType": "span",
                "traceIds": ["a" * 32],
                "spanType": "tool_call",
            },
            404,
            "None of the 1 trace ids",
        ),
    ],
)
def test_every_bad_span_or_multi_scorer_request_gets_a_4xx_that_says_what_is_wrong(
    api_client, payload, status, words
):
    for path in (BATCH, f"{BATCH}/preview"):
        answer = api_client.post(path, payload, format="json")
        assert answer.status_code == status, (path, answer.content)
        assert words in answer.content.decode()


def test_a_batch_over_fifty_thousand_scores_is_refused_with_the_limit(api_client):
    targets = [{"traceId": new_trace_id(), "spanId": new_span_id()} for _ in range(8_400)]
    answer = api_client.post(
        BATCH,
        {
            "scorerIds": [
                "latency",
                "error-free",
                "json-validity",
                "test-answer-length",
                "completeness",
                "tone-consistency",
            ],
            "scopeType": "span",
            "targets": targets,
        },
        format="json",
    )
    assert answer.status_code == 400
    assert "at most 50,000 scores" in answer.json()["detail"]
    too_many = [{"traceId": "a" * 32}] * 50_001
    answer = api_client.post(
        BATCH, {"scorerId": "latency", "scopeType": "span", "targets": too_many}, format="json"
    )
    assert answer.status_code == 400
    assert "at most 50,000 targets" in answer.json()["detail"]


def test_the_schema_states_the_limits_and_the_request_forms(api_client):
    schema = api_client.get("/api/schema/?format=json").json()
    request = schema["components"]["schemas"]["BatchRequestRequest"]["properties"]
    assert request["traceIds"]["maxItems"] == 10_000
    assert request["targets"]["maxItems"] == 50_000
    assert request["scorerIds"]["maxItems"] == 20
    assert (
        "50,000 scores"
        in schema["paths"]["/api/trace-scorers/batch"]["post"]["responses"]["400"]["description"]
    )


def test_trace_scores_filter_by_span_and_scorer_and_results_by_span_type(api_client, sync_tasks):
    trace = agent_trace()
    first, last = llm_spans(trace)
    with sync_tasks(execute=True):
        services.start_batch(
            scorer_ids=["latency", "error-free"],
            scope_type="span",
            targets=[
                {"traceId": trace.trace_id, "spanId": s}
                for s in (first.span_id, trace.root_span_id)
            ],
        )
    url = f"/api/traces/{trace.trace_id}/scores"
    rows = api_client.get(url, {"spanId": first.span_id}).json()["results"]
    assert sorted(r["scorerId"] for r in rows) == ["error-free", "latency"]
    assert {(r["spanId"], r["spanName"], r["spanType"]) for r in rows} == {
        (first.span_id, "chat gpt-4o-mini", "llm_generation")
    }
    assert rows[0]["traceWebUrl"].endswith(f"/traces/{trace.trace_id}/?span={first.span_id}")
    rows = api_client.get(url, {"spanId": first.span_id, "scorerId": "latency"}).json()["results"]
    assert [r["scorerId"] for r in rows] == ["latency"]
    assert api_client.get(url, {"spanId": last.span_id}).json()["results"] == []
    results = api_client.get("/api/scorers/latency/results", {"spanType": "agent_run"}).json()
    assert [r["spanId"] for r in results["results"]] == [trace.root_span_id]
    bad = api_client.get("/api/scorers/latency/results", {"spanType": "nonsense"})
    assert bad.status_code == 400 and "spanType" in bad.content.decode()
