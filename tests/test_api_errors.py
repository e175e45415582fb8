"""What schemathesis found in the API, pinned: the schema's limits hold, and every error is JSON."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory

from observability.services import create_ingest_key
from tests.factories import agent_trace, make_score
from tracescore.api import server_error

pytestmark = pytest.mark.django_db


def schema_of(api_client) -> dict:
    return api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def errors_of(response) -> dict:
    assert response["Content-Type"] == "application/json", response.content[:200]
    return response.json()


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/api/traces?pageSize=", "pageSize"),
        ("/api/traces?pageSize=1_0", "pageSize"),
        ("/api/traces?started_after=", "started_after"),
        ("/api/traces?status=", "status"),
        ("/api/scorers/completeness/results?created_before=", "created_before"),
        ("/api/scorers/completeness/results?min_score=", "min_score"),
        ("/api/scorers/completeness/results?page=last", "page"),
        ("/api/scorers/completeness/results?page=1.0", "page"),
        ("/api/scorers/completeness/results?page=", "page"),
        ("/api/scorers/completeness/results?page=0", "page"),
        ("/api/traces/4bf92f3577b34da6a3ce929d0e0e4736/scores?page=abc", "page"),
    ],
)
def test_an_empty_or_garbage_parameter_is_a_400_naming_it(api_client, url, parameter):
    agent_trace(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    response = api_client.get(url)
    assert response.status_code == 400
    assert list(errors_of(response)) == [parameter]


def test_the_html_pages_still_take_empty_filter_fields_as_any(alice_client):
    trace = agent_trace()
    page = alice_client.get("/traces/?name=&status=&started_after=&started_before=&type=")
    assert page.status_code == 200
    assert trace.name in page.content.decode()
    results = alice_client.get("/scorers/completeness/results/?status=&created_before=")
    assert results.status_code == 200


def test_a_page_past_the_end_is_still_a_404(api_client):
    make_score(agent_trace())
    response = api_client.get("/api/scorers/completeness/results?page=2")
    assert response.status_code == 404
    assert errors_of(response) == {"detail": "Invalid page."}


def test_score_bounds_are_in_the_schema_and_held(api_client):
    make_score(agent_trace(), score=0.5)
    parameters = schema_of(api_client)["paths"]["/api/scorers/{scorer_id}/results"]["get"][
        "parameters"
    ]
    max_score = next(p for p in parameters if p["name"] == "max_score")
    assert max_score["schema"] == {"type": "number", "minimum": -1e50, "maximum": 1e50}

    url = "/api/scorers/completeness/results"
    assert api_client.get(url, {"max_score": "1e50"}).json()["count"] == 1
    assert api_client.get(url, {"min_score": "-1e50"}).json()["count"] == 1
    for value in ("1.7e283", "-1e51"):
        response = api_client.get(url, {"max_score": value})
        assert response.status_code == 400
        assert list(errors_of(response)) == ["max_score"]


def test_page_sizes_and_batch_sizes_are_in_the_schema(api_client):
    schema = schema_of(api_client)
    listing = schema["paths"]["/api/traces"]["get"]["parameters"]
    page_size = next(p for p in listing if p["name"] == "pageSize")
    assert page_size["schema"]["minimum"] == 1
    batch = schema["components"]["schemas"]["BatchRequestRequest"]["properties"]["traceIds"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 10_000)
    spans = schema["components"]["schemas"]["SpanBatchRequest"]["properties"]["spans"]
    assert (spans["minItems"], spans["maxItems"]) == (1, 10_000)


def test_an_empty_trace_id_list_is_refused_as_the_schema_says(api_client):
    response = api_client.post(
        "/api/trace-scorers/batch",
        {"scorerId": "completeness", "traceIds": []},
        format="json",
    )
    assert response.status_code == 400
    assert "traceIds" in errors_of(response)


@pytest.mark.parametrize("url", ["/api/trace-scorers/batch", "/api/spans"])
def test_the_json_endpoints_refuse_forms_with_a_json_415(api_client, url):
    trace = agent_trace()
    fields = {"scorerId": "completeness", "traceIds": [trace.trace_id], "spans": "[]"}
    for response in (
        api_client.post(url, fields),
        api_client.post(url, fields, format="multipart"),
    ):
        assert response.status_code == 415
        assert "Unsupported media type" in errors_of(response)["detail"]
    operation = schema_of(api_client)["paths"][url]["post"]
    assert list(operation["requestBody"]["content"]) == ["application/json"]


def test_too_many_query_parameters_get_a_json_400(api_client):
    query = "&".join(f"status=ok&n{i}=1" for i in range(600))
    response = api_client.get(f"/api/traces?{query}")
    assert response.status_code == 400
    assert "too many form fields or query parameters" in errors_of(response)["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/trace-scorers/batch/not-a-uuid",
        "/api/trace-scorers/batch/6f1c2f9e-58a4-4d0e-9d47-3f0b6f3a2c11",
        "/api/no-such-endpoint",
        "/api/traces/4bf92f3577b34da6a3ce929d0e0e4736/nothing",
    ],
)
def test_a_404_under_api_is_json(api_client, url):
    response = api_client.get(url)
    assert response.status_code == 404
    assert "detail" in errors_of(response)


def test_a_404_outside_the_api_is_still_the_html_page(alice_client):
    response = alice_client.get("/no-such-page/")
    assert response.status_code == 404
    assert "text/html" in response["Content-Type"]


def test_a_server_error_under_api_is_json_and_elsewhere_the_html_page():
    api = server_error(RequestFactory().get("/api/traces"))
    page = server_error(RequestFactory().get("/traces/"))
    assert (api.status_code, json.loads(api.content)) == (500, {"detail": "Server error."})
    assert page.status_code == 500 and "text/html" in page["Content-Type"]


def test_a_span_field_of_the_wrong_json_type_rejects_the_span(client):
    secret = create_ingest_key(name="api")[1]
    span = {
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
        "startedAt": "2026-11-20T10:00:00Z",
        "model": 0,
        "inputTokens": "5",
    }
    response = client.post(
        "/api/spans",
        {"spans": [span]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 400
    errors = response.json()["rejected"][0]["errors"]
    assert set(errors) == {"model", "inputTokens"}


@pytest.mark.parametrize(
    ("started", "status"),
    [
        ("1899-12-31T23:59:59Z", 400),
        ("9001-01-01T00:00:00Z", 400),
        # The year as written counts, as the schema's pattern says.
        ("1900-01-01T00:00:00+05:00", 200),
        ("9000-12-31T23:59:59-05:00", 200),
    ],
)
def test_span_times_take_the_years_the_schema_states(client, started, status):
    secret = create_ingest_key(name="api")[1]
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "startedAt": started}
    response = client.post(
        "/api/spans",
        {"spans": [span]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == status, response.content


def test_a_batch_past_10000_spans_is_refused_naming_the_limit(client):
    secret = create_ingest_key(name="api")[1]
    spans = [{"traceId": "ab" * 16, "spanId": f"{i + 1:016x}"} for i in range(10_001)]
    response = client.post(
        "/api/spans",
        {"spans": spans},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 400
    assert "no more than 10000" in response.json()["spans"][0]


def test_paging_reaches_a_trace_that_starts_in_1899_in_utc(api_client, client):
    # Sent as 1900 (the years the API takes are checked as written), stored in UTC: 1899.
    secret = create_ingest_key(name="api")[1]
    spans = [
        {"traceId": "ab" * 16, "spanId": "cd" * 8, "startedAt": "1900-01-01T00:00:00+05:00"},
        {"traceId": "ef" * 16, "spanId": "12" * 8, "startedAt": "2026-11-20T10:00:00Z"},
    ]
    stored = client.post(
        "/api/spans",
        {"spans": spans},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert stored.json()["acceptedSpans"] == 2

    first = api_client.get("/api/traces", {"pageSize": 1}).json()
    second = api_client.get(first["next"]).json()
    assert [t["startedAt"] for t in second["results"]] == ["1899-12-31T19:00:00Z"]
    back = api_client.get(second["previous"])
    assert back.status_code == 200
    assert [t["traceId"] for t in back.json()["results"]] == ["ef" * 16]
