"""Input a signed-in user (or an exporter) can send that once gave server errors: now a 4xx.

These matter most on PostgreSQL (as in CI): it refuses offsets past ±15:59,
NUL characters and lone surrogates that SQLite would take.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from observability.models import Span
from observability.services import create_ingest_key
from tests.factories import agent_trace

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/api/traces?started_before=9999-12-31",
        "/api/traces?started_after=0001-01-01",
        "/api/scorers/completeness/results?created_before=9999-12-31T23:59:59Z",
    ],
)
def test_dates_past_what_the_database_takes_get_a_400_naming_the_range(api_client, url):
    agent_trace()
    response = api_client.get(url)
    assert response.status_code == 400, response.content
    assert "between the years" in json.dumps(response.json())


@pytest.mark.parametrize(
    "url", ["/traces/?started_before=9999-12-31", "/traces/?started_after=0001-01-01"]
)
def test_the_trace_list_shows_the_date_error_instead_of_failing(alice_client, url):
    agent_trace()
    response = alice_client.get(url)
    assert "between the years" in response.content.decode()


def test_the_results_page_shows_the_date_error_instead_of_failing(alice_client):
    response = alice_client.get("/scorers/completeness/results/?created_before=9999-12-31")
    assert "between the years" in response.content.decode()


def test_an_offset_past_what_postgresql_takes_means_the_same_instant_in_utc(
    api_client, alice_client
):
    trace = agent_trace(started_at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    # 2026-01-01T20:00+20:00 is 00:00 UTC: the trace started twelve hours later.
    after = {"started_after": "2026-01-01T20:00:00+20:00"}
    before = {"started_before": "2026-01-01T20:00:00+20:00"}

    assert [t["traceId"] for t in api_client.get("/api/traces", after).json()["results"]] == [
        trace.trace_id
    ]
    assert api_client.get("/api/traces", before).json()["results"] == []
    assert trace.name in alice_client.get("/traces/", after).content.decode()
    results = api_client.get(
        "/api/scorers/completeness/results", {"created_after": "2026-01-01T00:00:00+20:00"}
    )
    assert results.status_code == 200


def test_a_tampered_cursor_with_a_far_offset_or_year_is_not_a_server_error(
    api_client, alice_client
):
    agent_trace()
    far_offset = "n|2026-01-01T00:00:00+20:00|" + "a" * 32
    far_year = "n|9999-12-31T23:59:59+00:00|" + "a" * 32
    for text, status in ((far_offset, 200), (far_year, 400)):
        cursor = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        assert api_client.get("/api/traces", {"cursor": cursor}).status_code == status
        assert alice_client.get("/traces/", {"cursor": cursor}).status_code == status


@pytest.mark.parametrize(
    "url",
    [
        "/traces/%00/",
        "/api/traces/%00",
        "/api/traces/%00/scores",
        "/scorers/%00/results/",
        "/api/scorers/%00/results",
    ],
)
def test_a_nul_in_the_path_is_a_400_that_says_so(alice_client, url):
    response = alice_client.get(url)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


@pytest.mark.parametrize("depth", [65, 5_000])
def test_json_nested_too_deeply_is_a_400_on_every_json_endpoint(api_client, depth):
    body = '{"spans": ' + "[" * depth + '"leaf"' + "]" * depth + "}"
    for url in ("/api/spans", "/api/trace-scorers/batch"):
        response = api_client.post(url, body, content_type="application/json")
        assert response.status_code == 400, (url, response.content)
        assert "nested deeper than 64 levels" in response.json()["detail"]


def test_lone_surrogates_in_api_span_values_are_stored_as_replacement_characters(client):
    secret = create_ingest_key(name="api")[1]
    span = (
        '{"traceId": "%s", "spanId": "%s", "name": "%s", "startedAt": "2026-11-20T10:00:00Z", '
        '"input": {"q\\udc00": "why \\ud83d?"}, "output": "fine \\ude00"}'
    )
    body = (
        '{"spans": ['
        + span % ("ab" * 16, "cd" * 8, "agent run")
        + ", "
        + span % ("ab" * 16, "ef" * 8, "bad \\ud800 name")
        + "]}"
    )
    response = client.post(
        "/api/spans", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )

    assert response.status_code == 200, response.content
    assert response.json()["rejected"][0]["errors"]["name"] == [
        "Surrogate characters are not allowed: U+D800."
    ]
    stored = Span.objects.get()
    assert stored.input == {"q\ufffd": "why \ufffd?"}
    assert stored.output == "fine \ufffd"
