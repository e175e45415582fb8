"""Batch scoring: the service, the tasks (in sync mode) and the batch and results APIs."""

import pytest

from observability.models import Trace
from scoring import services
from scoring.models import Score, ScoringBatch
from tests.factories import agent_trace, new_trace_id

pytestmark = pytest.mark.django_db


def post_batch(api_client, **body):
    body.setdefault("scopeType", "trace")
    return api_client.post("/api/trace-scorers/batch", body, format="json")


def test_posting_a_batch_answers_202_and_workers_score_every_trace(api_client, sync_tasks):
    traces = [agent_trace() for _ in range(3)]
    with sync_tasks(execute=True):
        response = post_batch(
            api_client, scorerId="completeness", traceIds=[t.trace_id for t in traces]
        )
    assert response.status_code == 202
    body = response.json()
    assert body["message"] == "Scoring started for 3 traces"
    assert (body["traceCount"], body["status"], body["unknownTraceIds"]) == (3, "initiated", [])
    batch = api_client.get(f"/api/trace-scorers/batch/{body['batchId']}").json()
    assert (batch["total"], batch["succeeded"], batch["pending"], batch["failed"]) == (3, 3, 0, 0)
    assert batch["finishedAt"] is not None
    for trace in traces:
        (score,) = api_client.get(f"/api/traces/{trace.trace_id}/scores").json()["results"]
        assert score["spanId"] == trace.root_span_id
        assert score["status"] == "succeeded"
        assert "key terms of the question" in score["reason"]
        assert score["batchId"] == body["batchId"]


def test_unknown_and_repeated_trace_ids(api_client, sync_tasks):
    trace = agent_trace()
    unknown = new_trace_id()
    with sync_tasks(execute=True):
        response = post_batch(
            api_client,
            scorerId="error-free",
            traceIds=[trace.trace_id, trace.trace_id.upper(), unknown],
        )
    assert response.status_code == 202
    assert response.json()["traceCount"] == 1
    assert response.json()["unknownTraceIds"] == [unknown]
    assert Score.objects.filter(trace=trace).count() == 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"scorerId": "nope", "traceIds": ["a" * 32]}, 404, "No scorer with id 'nope'"),
        ({"scorerId": "completeness", "traceIds": []}, 400, "may not be empty"),
        ({"scorerId": "completeness"}, 400, "required"),
        ({"scorerId": "completeness", "traceIds": ["xyz"]}, 400, "not 32 hexadecimal"),
        ({"scorerId": "completeness", "traceIds": ["a" * 32] * 10_001}, 400, "more than 10000"),
        ({"scorerId": "completeness", "traceIds": ["a" * 32]}, 404, "None of the 1 trace ids"),
        (
            {"scorerId": "completeness", "traceIds": ["a" * 32], "scopeType": "span"},
            400,
            "needs targets",
        ),
        ({"scorerId": "faithfulness", "traceIds": ["a" * 32]}, 400, "No LLM judge configured"),
    ],
)
def test_bad_batch_requests_get_a_clear_4xx(api_client, body, status, message):
    response = api_client.post("/api/trace-scorers/batch", body, format="json")
    assert response.status_code == status
    assert message in str(response.json())
    assert not ScoringBatch.objects.exists()


def test_anonymous_batch_requests_are_refused(anon_api_client):
    response = anon_api_client.post(
        "/api/trace-scorers/batch", {"scorerId": "completeness", "traceIds": ["a" * 32]}
    )
    assert response.status_code == 401


def test_a_thousand_known_traces_start_in_the_same_few_queries_as_three(
    api_client, django_assert_num_queries
):
    Trace.objects.bulk_create(
        [Trace(trace_id=new_trace_id(), root_span_id="ab" * 8, has_root=True) for _ in range(1000)]
    )
    ids = list(Trace.objects.values_list("trace_id", flat=True)) + [new_trace_id()]
    # Token lookup, savepoint, traces read, batch insert, one INSERT … SELECT
    # for all the Scores, savepoint release: the same on SQLite and PostgreSQL.
    with django_assert_num_queries(6):
        response = post_batch(api_client, scorerId="latency", traceIds=ids)
    assert response.status_code == 202
    assert response.json()["traceCount"] == 1000
    assert len(response.json()["unknownTraceIds"]) == 1
    batch = ScoringBatch.objects.get()
    assert batch.scores.filter(status="pending", span_id="ab" * 8).count() == 1000


def test_failures_are_recorded_and_the_rest_of_the_batch_goes_on(
    api_client, sync_tasks, test_scorers
):
    good = agent_trace(answer="Your parcel arrives Friday.")
    refused = agent_trace(answer="Your refund is on its way.")
    crash = agent_trace(answer="Please crash now")
    hang = agent_trace(answer="Please hang forever")
    ids = [t.trace_id for t in (good, refused, crash, hang)]
    with sync_tasks(execute=True):
        response = post_batch(api_client, scorerId="test-picky", traceIds=ids)
    batch = ScoringBatch.objects.get(pk=response.json()["batchId"])
    assert batch.progress() == {
        "total": 4,
        "pending": 0,
        "queued": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 3,
        "skipped": 0,
        "done": 4,
    }
    scores = {s.trace_id: s for s in batch.scores.all()}
    assert scores[good.trace_id].score == 1.0
    assert scores[refused.trace_id].error == "Refund answers cannot be scored."
    assert scores[crash.trace_id].error.startswith("The scorer crashed: RuntimeError")
    assert scores[hang.trace_id].error == "The scorer did not finish within 0.5 s."
    assert all(scores[t].score is None for t in (refused.trace_id, hang.trace_id))


def test_a_score_is_unique_per_batch_scorer_trace_and_span():
    from django.db import IntegrityError

    trace = agent_trace()
    batch = services.start_batch(scorer_id="error-free", trace_ids=[trace.trace_id])
    with pytest.raises(IntegrityError):
        Score.objects.create(
            scorer_id="error-free", trace=trace, span_id=trace.root_span_id, batch=batch
        )


def test_scorers_api_lists_availability_and_statistics(api_client, sync_tasks):
    trace = agent_trace(tool_error="Order service timed out")
    with sync_tasks(execute=True):
        services.start_batch(scorer_id="error-free", trace_ids=[trace.trace_id])
    scorers = {s["id"]: s for s in api_client.get("/api/scorers").json()}
    assert scorers["error-free"]["resultCount"] == 1
    assert scorers["error-free"]["meanScore"] == 0.0
    assert scorers["faithfulness"]["available"] is False
    assert "TRACESCORE_JUDGE_BASE_URL" in scorers["faithfulness"]["unavailableReason"]
    assert scorers["completeness"]["resultCount"] == 0
    one = api_client.get("/api/scorers/error-free").json()
    assert one["lastRunAt"] is not None
    assert api_client.get("/api/scorers/nope").status_code == 404


def test_scorer_results_api_links_back_to_traces_and_filters(api_client, sync_tasks):
    ok, broken = agent_trace(), agent_trace(tool_error="Order service timed out")
    with sync_tasks(execute=True):
        services.start_batch(scorer_id="error-free", trace_ids=[ok.trace_id, broken.trace_id])
    results = api_client.get("/api/scorers/error-free/results").json()["results"]
    assert {r["traceId"] for r in results} == {ok.trace_id, broken.trace_id}
    first = results[0]
    assert first["traceUrl"].endswith(f"/api/traces/{first['traceId']}")
    assert first["traceWebUrl"].endswith(f"/traces/{first['traceId']}/?span={first['spanId']}")
    high = api_client.get("/api/scorers/error-free/results?min_score=0.5").json()["results"]
    assert [r["traceId"] for r in high] == [ok.trace_id]
    bad = api_client.get("/api/scorers/error-free/results?min_score=lots")
    assert bad.status_code == 400
    assert api_client.get("/api/scorers/nope/results").status_code == 404


def test_trace_scores_api_answers_404_for_an_unknown_trace(api_client):
    response = api_client.get(f"/api/traces/{new_trace_id()}/scores")
    assert response.status_code == 404
    assert "No trace with id" in response.json()["detail"]


def test_batch_api_answers_404_for_an_unknown_batch(api_client):
    response = api_client.get("/api/trace-scorers/batch/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404


def test_schema_documents_the_batch_errors(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    responses = schema["paths"]["/api/trace-scorers/batch"]["post"]["responses"]
    assert {"202", "400", "401", "404"} <= set(responses)


def test_browsable_api_renders_the_batch_form(alice_client):
    response = alice_client.get("/api/trace-scorers/batch", HTTP_ACCEPT="text/html")
    assert response.status_code == 405  # GET is not allowed, but the page renders
    assert "scorerId" in response.content.decode()
