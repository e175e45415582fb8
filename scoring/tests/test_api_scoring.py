"""The scoring REST API as a client sees it: batches, scores of a trace, scorers and results."""

import pytest
from django.test import override_settings
from django_q.conf import Conf

from scoring.models import Score
from tests.factories import agent_trace, new_trace_id

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = "/api/trace-scorers/batch"


@pytest.fixture(autouse=True)
def test_scorers(monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)
    with override_settings(
        TRACESCORE_SCORERS=["scoring.tests.worker_scorers"], TRACESCORE_SCORER_TIMEOUT=0.5
    ):
        yield


def test_posting_a_batch_answers_202_and_the_scores_appear_on_each_trace(api_client):
    one, two = agent_trace(), agent_trace(answer="You get a refund.")
    missing = new_trace_id()
    answer = api_client.post(
        BATCH,
        {"scorerId": "test-picky", "traceIds": [one.trace_id, two.trace_id, one.trace_id, missing]},
        format="json",
    )
    assert answer.status_code == 202
    body = answer.json()
    assert body["message"] == "Scoring started for 2 traces"
    assert body["traceCount"] == 2 and body["status"] == "initiated"
    assert body["unknownTraceIds"] == [missing]

    batch = api_client.get(f"{BATCH}/{body['batchId']}").json()
    assert batch["scorerId"] == "test-picky"
    assert (batch["total"], batch["pending"], batch["succeeded"], batch["failed"]) == (2, 0, 1, 1)
    assert batch["finishedAt"] is not None

    scores = api_client.get(f"/api/traces/{one.trace_id}/scores").json()["results"]
    assert [(s["scorerId"], s["status"], s["score"]) for s in scores] == [
        ("test-picky", "succeeded", 1.0)
    ]
    assert scores[0]["spanId"] == one.root_span_id
    assert scores[0]["batchId"] == body["batchId"]
    failed = api_client.get(f"/api/traces/{two.trace_id}/scores").json()["results"][0]
    assert failed["status"] == "failed"
    assert failed["error"] == "Refund answers cannot be scored."


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ({"scorerId": "nope", "traceIds": ["a" * 32]}, 404, "No scorer with id"),
        ({"scorerId": "test-slow"}, 400, "traceIds"),
        ({"scorerId": "test-slow", "traceIds": []}, 400, "traceIds"),
        ({"scorerId": "test-slow", "traceIds": ["zz"]}, 400, "not 32 hexadecimal"),
        ({"scorerId": "test-slow", "traceIds": ["a" * 32], "scopeType": "span"}, 400, "scope"),
        ({"scorerId": "test-offline", "traceIds": ["a" * 32]}, 400, "No judge endpoint"),
        ({"scorerId": "test-slow", "traceIds": ["a" * 32]}, 404, "None of the 1 trace ids"),
    ],
)
def test_a_bad_batch_request_gets_a_4xx_that_says_what_is_wrong(api_client, payload, status, words):
    answer = api_client.post(BATCH, payload, format="json")
    assert answer.status_code == status
    assert words in answer.content.decode()


def test_more_than_ten_thousand_trace_ids_are_refused(api_client):
    answer = api_client.post(
        BATCH, {"scorerId": "test-slow", "traceIds": ["a" * 32] * 10_001}, format="json"
    )
    assert answer.status_code == 400
    assert "10000" in answer.content.decode().replace(",", "")


def test_the_api_needs_a_token(anon_api_client):
    for answer in (
        anon_api_client.post(BATCH, {}, format="json"),
        anon_api_client.get("/api/scorers"),
    ):
        assert answer.status_code == 401
        assert answer["WWW-Authenticate"] == "Token"


def test_scores_of_an_unknown_trace_and_an_unknown_batch_are_404(api_client):
    assert api_client.get(f"/api/traces/{new_trace_id()}/scores").status_code == 404
    answer = api_client.get(f"{BATCH}/00000000-0000-0000-0000-000000000000")
    assert answer.status_code == 404 and "No scoring batch" in answer.json()["detail"]


def test_the_scorer_list_shows_availability_and_result_statistics(api_client):
    traces = [agent_trace(), agent_trace(answer="")]
    api_client.post(
        BATCH,
        {"scorerId": "test-answer-length", "traceIds": [t.trace_id for t in traces]},
        format="json",
    )
    scorers = {s["id"]: s for s in api_client.get("/api/scorers").json()}
    length = scorers["test-answer-length"]
    assert length["resultCount"] == 2 and length["meanScore"] == 0.5
    assert length["lastRunAt"] is not None and length["available"] is True
    offline = scorers["test-offline"]
    assert offline["available"] is False
    assert offline["unavailableReason"] == "No judge endpoint is configured."
    assert offline["resultCount"] == 0 and offline["meanScore"] is None
    detail = api_client.get("/api/scorers/test-answer-length").json()
    assert detail["name"] == "Test answer length"
    assert api_client.get("/api/scorers/nope").status_code == 404


def test_scorer_results_are_newest_first_with_trace_links_and_filters(api_client):
    good, empty = agent_trace(), agent_trace(answer="")
    for trace in (good, empty):
        api_client.post(
            BATCH, {"scorerId": "test-answer-length", "traceIds": [trace.trace_id]}, format="json"
        )
    results = api_client.get("/api/scorers/test-answer-length/results").json()["results"]
    assert [r["traceId"] for r in results] == [empty.trace_id, good.trace_id]
    assert results[0]["spanId"] == empty.root_span_id
    assert results[0]["traceUrl"].endswith(f"/api/traces/{empty.trace_id}")
    assert results[0]["traceWebUrl"].endswith(
        f"/traces/{empty.trace_id}/?span={empty.root_span_id}"
    )
    high = api_client.get("/api/scorers/test-answer-length/results?min_score=0.5").json()
    assert [r["traceId"] for r in high["results"]] == [good.trace_id]
    failed = api_client.get("/api/scorers/test-answer-length/results?status=failed").json()
    assert failed["results"] == []
    assert api_client.get("/api/scorers/nope/results").status_code == 404
    assert Score.objects.count() == 2


def test_the_browsable_api_shows_a_form_for_starting_a_batch(alice_client):
    page = alice_client.get(BATCH, HTTP_ACCEPT="text/html")
    # GET is not allowed on the endpoint; the browsable API still renders the form.
    assert page.status_code == 405
    assert page["Content-Type"].startswith("text/html")
    assert "traceIds" in page.content.decode()


def test_the_schema_documents_the_error_answers(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    post = schema["paths"]["/api/trace-scorers/batch"]["post"]
    assert {"202", "400", "404"} <= set(post["responses"])
    assert "404" in schema["paths"]["/api/scorers/{scorer_id}/results"]["get"]["responses"]


def test_a_batch_of_a_thousand_traces_is_accepted_in_well_under_a_second(api_client, monkeypatch):
    import time

    from observability.services import ingest_spans
    from tests.factories import span

    monkeypatch.setattr(Conf, "SYNC", False)  # queue only; the slow scorer never runs here
    ids = [new_trace_id() for _ in range(1000)]
    ingest_spans([span(t, name="agent", output="ok") for t in ids])
    started = time.perf_counter()
    answer = api_client.post(BATCH, {"scorerId": "test-slow", "traceIds": ids}, format="json")
    elapsed = time.perf_counter() - started
    assert answer.status_code == 202 and answer.json()["traceCount"] == 1000
    assert elapsed < 1.0, f"took {elapsed:.2f} s"


def test_a_bad_results_filter_is_a_400_naming_the_field(api_client):
    answer = api_client.get("/api/scorers/test-slow/results?min_score=high")
    assert answer.status_code == 400
    assert "min_score" in answer.json()
