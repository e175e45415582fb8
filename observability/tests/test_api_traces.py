"""GET /api/traces and GET /api/traces/<traceId>: the read side of the trace API."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from rest_framework.test import APIClient

from observability.models import Trace
from observability.services import ingest_spans
from tests.factories import add_log, agent_trace, new_trace_id, span

pytestmark = pytest.mark.django_db

LIST = "/api/traces"
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def root_only(started_at: datetime, *, trace_id: str | None = None, **fields) -> str:
    """A one-span trace; returns its id."""
    trace_id = trace_id or new_trace_id()
    ingest_spans([span(trace_id, started_at=started_at, **fields)])
    return trace_id


def walk(client: APIClient, url: str, link: str = "next") -> list[list[str]]:
    """Follow next (or previous) links from url; the trace ids of every page."""
    pages = []
    while url:
        body = client.get(url).json()
        pages.append([item["traceId"] for item in body["results"]])
        url = body[link]
    return pages


def test_the_list_shows_traces_newest_first_with_their_summary(api_client):
    older = agent_trace(started_at=T0, name="support-agent")
    newer = agent_trace(started_at=T0 + timedelta(hours=1), tool_error="orders-api timed out")

    response = api_client.get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert [item["traceId"] for item in body["results"]] == [newer.trace_id, older.trace_id]
    assert body["next"] is None and body["previous"] is None
    assert body["results"][1] == {
        "traceId": older.trace_id,
        "name": "support-agent",
        "spanType": "agent_run",
        "status": "ok",
        "startedAt": "2026-11-20T10:00:00Z",
        "endedAt": "2026-11-20T10:00:02.400000Z",
        "durationMs": 2400.0,
        "spanCount": 4,
        "hasError": False,
        "inputTokens": 330,
        "outputTokens": 50,
        "url": f"http://testserver/api/traces/{older.trace_id}",
        "webUrl": f"http://testserver/traces/{older.trace_id}/",
    }
    assert body["results"][0]["status"] == "error"
    assert body["results"][0]["hasError"] is True


def test_anonymous_callers_get_401_from_list_and_detail(anon_api_client):
    trace = agent_trace()
    for url in (LIST, f"{LIST}/{trace.trace_id}"):
        response = anon_api_client.get(url)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
        assert "credentials were not provided" in response.json()["detail"]


def test_a_signed_in_browser_session_may_read_the_api(alice_client):
    agent_trace()
    assert alice_client.get(LIST, HTTP_ACCEPT="application/json").json()["results"]


def test_name_filter_matches_part_of_the_name_in_any_case(api_client):
    wanted = root_only(T0, name="Refund-Agent v2", span_type="agent_run")
    root_only(T0, name="research-agent", span_type="agent_run")
    results = api_client.get(LIST, {"name": "refund"}).json()["results"]
    assert [item["traceId"] for item in results] == [wanted]


def test_type_filter_keeps_traces_whose_root_has_that_type(api_client):
    workflow = root_only(T0, name="nightly-report", span_type="workflow_run")
    root_only(T0, name="support-agent", span_type="agent_run")
    results = api_client.get(LIST, {"type": "workflow_run"}).json()["results"]
    assert [item["traceId"] for item in results] == [workflow]


def test_status_filter_separates_failed_runs_from_good_ones(api_client):
    good = agent_trace(started_at=T0)
    failed = agent_trace(started_at=T0, tool_error="HTTP 503 from payments")
    assert [i["traceId"] for i in api_client.get(LIST, {"status": "error"}).json()["results"]] == [
        failed.trace_id
    ]
    assert [i["traceId"] for i in api_client.get(LIST, {"status": "ok"}).json()["results"]] == [
        good.trace_id
    ]


def test_started_after_and_before_take_dates_and_datetimes(api_client):
    monday = root_only(datetime(2026, 11, 16, 23, 59, tzinfo=UTC))
    tuesday_morning = root_only(datetime(2026, 11, 17, 8, 0, tzinfo=UTC))
    tuesday_night = root_only(datetime(2026, 11, 17, 23, 30, tzinfo=UTC))
    wednesday = root_only(datetime(2026, 11, 18, 0, 0, tzinfo=UTC))

    def ids(**params):
        return {item["traceId"] for item in api_client.get(LIST, params).json()["results"]}

    # A date alone covers its whole day on both ends: the inclusive range of a date picker.
    tuesday = {tuesday_morning, tuesday_night}
    assert ids(started_after="2026-11-17", started_before="2026-11-17") == tuesday
    assert ids(started_after="2026-11-17") == {*tuesday, wednesday}
    assert ids(started_before="2026-11-16") == {monday}
    # A datetime is exact: after is inclusive, before is exclusive.
    assert ids(started_after="2026-11-17T08:00:00Z") == {tuesday_morning, tuesday_night, wednesday}
    assert ids(started_before="2026-11-18T00:00:00Z") == {monday, *tuesday}
    # An offset sent without URL-encoding its "+" still means that offset.
    assert ids(started_after="2026-11-17T09:00:00 01:00", started_before="2026-11-17T10:00") == {
        tuesday_morning
    }


def test_scored_by_keeps_traces_with_a_score_from_that_scorer(api_client):
    from scoring.models import Score

    scored = agent_trace(started_at=T0)
    other_scorer = agent_trace(started_at=T0)
    agent_trace(started_at=T0)
    Score.objects.create(trace=scored, scorer_id="keyword-coverage", score=0.5)
    Score.objects.create(trace=scored, scorer_id="keyword-coverage", score=0.7)
    Score.objects.create(trace=other_scorer, scorer_id="json-validity", score=1.0)

    results = api_client.get(LIST, {"scored_by": "keyword-coverage"}).json()["results"]

    assert [item["traceId"] for item in results] == [scored.trace_id]


def test_filters_combine(api_client):
    wanted = agent_trace(started_at=T0, name="support-agent", tool_error="timeout")
    agent_trace(started_at=T0, name="support-agent")
    agent_trace(started_at=T0 - timedelta(days=3), name="support-agent", tool_error="timeout")
    params = {
        "name": "support",
        "status": "error",
        "type": "agent_run",
        "started_after": "2026-11-19",
    }
    results = api_client.get(LIST, params).json()["results"]
    assert [item["traceId"] for item in results] == [wanted.trace_id]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"status": "done"}, "status", "Select a valid choice. done is not one of"),
        ({"type": "chain"}, "type", "Select a valid choice. chain is not one of"),
        ({"started_after": "yesterday"}, "started_after", "Enter an ISO 8601 date"),
        ({"started_before": "2026-13-01"}, "started_before", "Enter an ISO 8601 date"),
        ({"scored_by": "no such scorer!"}, "scored_by", "Enter a scorer id"),
        ({"name": "x" * 600}, "name", "at most 512 characters"),
        ({"pageSize": "lots"}, "pageSize", "Enter a whole number from 1 to 200."),
        ({"pageSize": "0"}, "pageSize", "Enter a whole number from 1 to 200."),
        ({"cursor": "not-a-cursor"}, "cursor", "This cursor is not valid"),
    ],
)
def test_an_invalid_parameter_gets_400_with_its_message(api_client, params, field, message):
    agent_trace()
    response = api_client.get(LIST, params)
    assert response.status_code == 400
    assert message in response.json()[field][0]


def test_cursor_paging_never_loses_or_repeats_traces_that_started_together(api_client):
    # Eleven traces in the same microsecond between two others: pages of 3 cut through the tie.
    tied = [root_only(T0) for _ in range(11)]
    newest = root_only(T0 + timedelta(seconds=1))
    oldest = root_only(T0 - timedelta(seconds=1))
    expected = [newest, *sorted(tied, reverse=True), oldest]

    forward = walk(api_client, f"{LIST}?pageSize=3")

    assert [len(page) for page in forward] == [3, 3, 3, 3, 1]
    assert [trace_id for page in forward for trace_id in page] == expected

    # Following "previous" from the last page gives the same pages back.
    last_page = api_client.get(LIST, {"pageSize": 3})
    for _ in range(4):
        last_page = api_client.get(last_page.json()["next"])
    backward = walk(api_client, last_page.json()["previous"], link="previous")
    assert backward == list(reversed(forward[:-1]))


def test_traces_arriving_between_pages_do_not_shift_the_next_page(api_client):
    tied = sorted((root_only(T0) for _ in range(6)), reverse=True)
    first = api_client.get(LIST, {"pageSize": 3}).json()
    assert [item["traceId"] for item in first["results"]] == tied[:3]

    # A newer trace and one tied with the rest, sorting before the cursor, arrive meanwhile.
    root_only(T0 + timedelta(minutes=1))
    root_only(T0, trace_id="f" * 32)

    second = api_client.get(first["next"]).json()
    assert [item["traceId"] for item in second["results"]] == tied[3:]
    assert second["next"] is None


def test_page_size_defaults_to_50_and_is_capped_at_200(api_client):
    ingest_spans(
        [span(new_trace_id(), started_at=T0 + i * timedelta(seconds=1)) for i in range(205)]
    )

    default = api_client.get(LIST).json()
    capped = api_client.get(LIST, {"pageSize": 1000}).json()

    assert len(default["results"]) == 50
    assert len(capped["results"]) == 200
    assert parse_qs(urlparse(capped["next"]).query)["pageSize"] == ["1000"]
    assert len(api_client.get(capped["next"]).json()["results"]) == 5


def test_the_list_costs_two_queries_however_many_traces_and_filters(
    api_client, django_assert_num_queries
):
    for i in range(30):
        agent_trace(started_at=T0 + timedelta(minutes=i), tool_error="boom" if i % 2 else "")
    # One for the token, one for the page.
    with django_assert_num_queries(2):
        assert len(api_client.get(LIST).json()["results"]) == 30
    params = {
        "status": "error",
        "name": "agent",
        "scored_by": "tone",
        "started_after": "2026-11-01",
    }
    with django_assert_num_queries(2):
        api_client.get(LIST, params)
    deeper = api_client.get(LIST, {"pageSize": 5}).json()["next"]
    with django_assert_num_queries(2):
        assert len(api_client.get(deeper).json()["results"]) == 5


def test_detail_shows_the_trace_and_every_span_in_tree_order(api_client):
    trace = agent_trace(
        started_at=T0,
        question="Where is my order 1042?",
        tool_error="TimeoutError: orders-api did not answer",
        metadata={"expected_tools": ["lookup_order"]},
    )

    response = api_client.get(f"{LIST}/{trace.trace_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["traceId"] == trace.trace_id
    assert body["name"] == "support-agent"
    assert body["status"] == "error"
    assert body["hasRoot"] is True
    assert body["rootSpanId"] == body["spans"][0]["spanId"]
    assert body["errorMessage"] == "TimeoutError: orders-api did not answer"
    assert body["serviceName"] == "shop-support"
    assert body["webUrl"] == f"http://testserver/traces/{trace.trace_id}/"
    root, llm, tool, answer = body["spans"]
    assert [s["spanType"] for s in body["spans"]] == [
        "agent_run",
        "llm_generation",
        "tool_call",
        "llm_generation",
    ]
    assert root["parentSpanId"] is None
    assert root["input"] == "Where is my order 1042?"
    assert root["attributes"] == {"metadata": {"expected_tools": ["lookup_order"]}}
    assert {llm["parentSpanId"], tool["parentSpanId"]} == {root["spanId"]}
    assert llm["input"][0] == {"role": "system", "content": "You are a helpful support agent."}
    assert llm["output"] == [{"role": "assistant", "content": "Let me look up that order."}]
    assert (llm["model"], llm["inputTokens"], llm["outputTokens"]) == ("gpt-4o-mini", 120, 18)
    assert tool == {
        "spanId": tool["spanId"],
        "parentSpanId": root["spanId"],
        "name": "lookup_order",
        "spanType": "tool_call",
        "status": "error",
        "errorMessage": "TimeoutError: orders-api did not answer",
        "startedAt": "2026-11-20T10:00:00.950000Z",
        "endedAt": "2026-11-20T10:00:01.300000Z",
        "durationMs": 350.0,
        "input": {"order_id": "1042"},
        "output": None,
        "attributes": {},
        "events": [],
        "resource": {},
        "model": "",
        "inputTokens": None,
        "outputTokens": None,
        "depth": 1,
    }
    assert (root["depth"], body["spanCount"], body["next"]) == (0, 4, None)
    assert answer["output"][0]["content"].startswith("Your order 1042 shipped")


def test_detail_of_an_unknown_trace_is_404_with_a_message(api_client):
    response = api_client.get(f"{LIST}/{'0' * 31}9")
    assert response.status_code == 404
    assert response.json() == {"detail": f"No trace with id {'0' * 31}9."}


def test_detail_accepts_an_upper_case_trace_id(api_client):
    trace = agent_trace(trace_id="ab" * 16)
    assert api_client.get(f"{LIST}/{'AB' * 16}").json()["traceId"] == trace.trace_id


def test_detail_costs_five_queries_however_many_spans_and_logs(
    api_client, django_assert_num_queries
):
    trace_id = new_trace_id()
    children = [span(trace_id, parent_span_id="1" * 16, started_at=T0) for _ in range(60)]
    ingest_spans([span(trace_id, name="root", started_at=T0), *children])
    for child in children[:30]:
        add_log(trace_id, child.span_id)
    # Token, trace, span tree (ids and parents), the page's spans, their logs.
    with django_assert_num_queries(5):
        detail = api_client.get(f"{LIST}/{trace_id}").json()
    assert (len(detail["spans"]), len(detail["logs"])) == (61, 30)


def test_detail_lists_the_traces_logs_with_their_span_severity_and_body(api_client):
    trace = agent_trace()
    tool = trace.spans.get(name="lookup_order")
    add_log(
        trace.trace_id,
        tool.span_id,
        {"status": 429},
        severity_number=13,
        severity_text="",
        attributes={"retry": "1"},
    )
    (log,) = api_client.get(f"{LIST}/{trace.trace_id}").json()["logs"]
    assert {k: log[k] for k in ("spanId", "severityNumber", "severityText", "attributes")} == {
        "spanId": tool.span_id,
        "severityNumber": 13,
        "severityText": "WARN",
        "attributes": {"retry": "1"},
    }
    assert log["body"] == {"status": 429}
    assert log["scopeName"] == "support-agent"


def test_the_schema_documents_both_endpoints_and_their_answers(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    listing = schema["paths"]["/api/traces"]["get"]
    detail = schema["paths"]["/api/traces/{trace_id}"]["get"]
    assert set(listing["responses"]) == {"200", "400", "401"}
    assert set(detail["responses"]) == {"200", "400", "401", "404"}
    assert {p["name"] for p in detail["parameters"]} == {"trace_id", "offset", "pageSize"}
    parameters = {p["name"] for p in listing["parameters"]}
    assert parameters == {
        "name",
        "type",
        "status",
        "service",
        "metadata",
        "min_duration_ms",
        "max_duration_ms",
        "started_after",
        "started_before",
        "scored_by",
        "cursor",
        "pageSize",
    }
    item = schema["components"]["schemas"]["Trace"]["properties"]
    assert {"traceId", "durationMs", "spanCount", "hasError", "url", "webUrl"} <= set(item)
    span_fields = schema["components"]["schemas"]["TreeSpan"]["properties"]
    assert {"spanId", "parentSpanId", "input", "output", "model", "inputTokens", "depth"} <= set(
        span_fields
    )
    assert {"spans", "logs", "next", "spanCount"} <= set(
        schema["components"]["schemas"]["TraceDetail"]["properties"]
    )


def test_traces_are_listed_newest_first_even_when_stored_out_of_order(api_client):
    ids = [root_only(T0 + timedelta(minutes=m)) for m in (5, 1, 9, 3)]
    results = api_client.get(LIST).json()["results"]
    order = sorted(ids, key=lambda i: Trace.objects.get(pk=i).started_at, reverse=True)
    assert [item["traceId"] for item in results] == order


def test_durations_are_given_to_a_tenth_of_a_millisecond(api_client):
    started = T0 + timedelta(microseconds=1)
    trace_id = root_only(started, ended_at=started + timedelta(microseconds=135_401))

    listed = api_client.get(LIST).json()["results"][0]
    detail = api_client.get(f"{LIST}/{trace_id}").json()

    assert listed["durationMs"] == 135.4
    assert detail["durationMs"] == 135.4
    assert detail["spans"][0]["durationMs"] == 135.4
