"""Mastra's scoring endpoint and span-score listing, in Mastra's shapes (scoring/mastra.py).

The same endpoints are driven by Mastra's own client (@mastra/client-js) in
tests/test_mastra_client.py.
"""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from scoring.models import Score
from tests.factories import agent_trace, make_score, new_span_id, new_trace_id

pytestmark = pytest.mark.django_db

SCORE = "/api/observability/traces/score"


def test_mastra_can_score_a_span_and_a_root_by_scorer_name_and_list_the_spans_scores(
    api_client, sync_tasks
):
    trace = agent_trace()
    llm = trace.spans.filter(span_type="llm_generation").first()
    with sync_tasks(execute=True):
        answer = api_client.post(
            SCORE,
            {
                "scorerName": "Latency",
                "targets": [
                    {"traceId": trace.trace_id, "spanId": llm.span_id},
                    {"traceId": trace.trace_id},
                ],
            },
            format="json",
        )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert {k: body[k] for k in ("status", "message", "traceCount")} == {
        "status": "success",
        "message": "Scoring started for 2 traces",
        "traceCount": 2,
    }
    assert set(Score.objects.values_list("span_id", flat=True)) == {
        llm.span_id,
        trace.root_span_id,
    }
    listing = api_client.get(f"/api/observability/traces/{trace.trace_id}/{llm.span_id}/scores")
    assert listing.status_code == 200
    page = listing.json()
    assert page["pagination"] == {"total": 1, "page": 0, "perPage": 10, "hasMore": False}
    [row] = page["scores"]
    assert row["scorerId"] == "latency" and row["scorer"]["name"] == "Latency"
    assert (row["traceId"], row["spanId"]) == (trace.trace_id, llm.span_id)
    assert row["entityType"] == "model_generation" and row["entityId"] == llm.name
    assert isinstance(row["score"], float) and row["reason"].startswith("Took ")
    assert row["source"] == "TEST" and row["runId"] == body["batchId"]


def test_mastra_targets_without_span_ids_score_whole_traces_and_unknown_ones_are_listed(
    api_client,
):
    trace, missing = agent_trace(), new_trace_id()
    answer = api_client.post(
        SCORE,
        {
            "scorerName": "error-free",
            "targets": [{"traceId": trace.trace_id}, {"traceId": missing}],
        },
        format="json",
    )
    assert answer.status_code == 200
    assert answer.json()["message"] == "Scoring started for 1 trace"
    assert answer.json()["unknownTargets"] == [{"traceId": missing}]
    score = Score.objects.get()
    assert score.batch.scope_type == "trace" and score.span_id == trace.root_span_id


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (
            {"scorerName": "nope", "targets": [{"traceId": "a" * 32}]},
            404,
            "Scorer 'nope' not found",
        ),
        ({"scorerName": "latency"}, 400, "targets"),
        ({"targets": [{"traceId": "a" * 32}]}, 400, "scorerName"),
        ({"scorerName": "latency", "targets": []}, 400, "non-empty list"),
        ({"scorerName": "latency", "targets": [{"traceId": "a" * 32, "spanId": "x"}]}, 400, "16"),
        ({"scorerName": "latency", "targets": [{"traceId": "a" * 32}]}, 404, "None of the 1"),
    ],
)
def test_a_bad_mastra_request_gets_mastras_error_shape(api_client, body, status, words):
    answer = api_client.post(SCORE, body, format="json")
    assert answer.status_code == status
    assert words in answer.json()["error"]


def test_the_listing_checks_its_paging_and_the_trace(api_client):
    trace = agent_trace()
    base = f"/api/observability/traces/{trace.trace_id}/{new_span_id()}/scores"
    assert api_client.get(base).json() == {
        "pagination": {"total": 0, "page": 0, "perPage": 10, "hasMore": False},
        "scores": [],
    }
    assert api_client.get(base, {"perPage": 0}).status_code == 400
    assert api_client.get(base, {"page": "x"}).status_code == 400
    gone = api_client.get(f"/api/observability/traces/{new_trace_id()}/{new_span_id()}/scores")
    assert gone.status_code == 404 and "not found" in gone.json()["error"]


def test_mastra_clients_may_send_the_token_as_a_bearer_token(alice, anon_api_client):
    trace = agent_trace()
    token, _ = Token.objects.get_or_create(user=alice)
    url = f"/api/observability/traces/{trace.trace_id}/{trace.root_span_id}/scores"
    assert anon_api_client.get(url).status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    assert client.get(url).status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert client.get(url).status_code == 401


def test_scores_a_rule_made_are_live_for_mastra_and_asked_for_ones_are_tests(api_client):
    trace = agent_trace()
    make_score(trace, scorer_id="completeness", span_id=trace.root_span_id, source="rule")
    make_score(trace, scorer_id="latency", span_id=trace.root_span_id, source="batch")
    url = f"/api/observability/traces/{trace.trace_id}/{trace.root_span_id}/scores"
    rows = api_client.get(url).json()["scores"]
    assert {row["scorerId"]: row["source"] for row in rows} == {
        "completeness": "LIVE",
        "latency": "TEST",
    }
