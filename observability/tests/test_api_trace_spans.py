"""GET /api/traces/<traceId> on big traces: spans in tree order, a page at a time."""

import pytest

from observability.models import Trace
from tests.factories import add_log, chain_trace, wide_trace

pytestmark = pytest.mark.django_db


def pages(api_client, url: str) -> list[dict]:
    """Every page of a trace's spans, following ``next``."""
    bodies = []
    while url:
        response = api_client.get(url)
        assert response.status_code == 200, response.content
        bodies.append(response.json())
        url = bodies[-1]["next"]
    return bodies


def test_a_big_trace_comes_in_pages_of_500_spans_with_a_next_link(api_client):
    trace = wide_trace(1_200)
    first, second, third = pages(api_client, f"/api/traces/{trace.trace_id}")
    assert first["spanCount"] == 1_201
    assert [len(b["spans"]) for b in (first, second, third)] == [500, 500, 201]
    assert first["next"] == f"http://testserver/api/traces/{trace.trace_id}?offset=500"
    assert second["next"] == f"http://testserver/api/traces/{trace.trace_id}?offset=1000"
    assert third["next"] is None
    assert third["traceId"] == trace.trace_id and third["name"] == "wide-root"
    names = [s["name"] for body in (first, second, third) for s in body["spans"]]
    assert names == ["wide-root"] + [f"step {n}" for n in range(1_200)]
    assert first["spans"][0]["depth"] == 0
    assert {s["depth"] for s in third["spans"]} == {1}


def test_a_page_may_hold_up_to_1000_spans(api_client):
    trace = wide_trace(1_200)
    bodies = pages(api_client, f"/api/traces/{trace.trace_id}?pageSize=1000")
    assert [len(b["spans"]) for b in bodies] == [1_000, 201]


def test_page_size_picks_the_page_and_next_keeps_it(api_client):
    trace = wide_trace(1_200)
    bodies = pages(api_client, f"/api/traces/{trace.trace_id}?pageSize=300")
    assert [len(b["spans"]) for b in bodies] == [300, 300, 300, 300, 1]
    assert "pageSize=300" in bodies[0]["next"] and "offset=300" in bodies[0]["next"]
    ids = [s["spanId"] for b in bodies for s in b["spans"]]
    assert len(ids) == len(set(ids)) == 1_201


def test_a_1500_deep_chain_comes_in_tree_order_with_its_depths(api_client):
    trace = chain_trace(1_500)
    bodies = pages(api_client, f"/api/traces/{trace.trace_id}")
    spans = [s for b in bodies for s in b["spans"]]
    assert [s["depth"] for s in spans] == list(range(1_500))
    assert [s["name"] for s in spans[-2:]] == ["level 1498", "level 1499"]
    assert spans[-1]["parentSpanId"] == spans[-2]["spanId"]


def test_the_logs_come_with_the_page_of_their_span_and_strays_with_the_first(api_client):
    trace = wide_trace(1_200)
    early = trace.spans.get(name="step 10")
    late = trace.spans.get(name="step 1100")
    add_log(trace.trace_id, early.span_id, "early log")
    add_log(trace.trace_id, late.span_id, "late log")
    add_log(trace.trace_id, "", "trace note")
    first, *_, last = pages(api_client, f"/api/traces/{trace.trace_id}")
    assert sorted(log["body"] for log in first["logs"]) == ["early log", "trace note"]
    assert [log["body"] for log in last["logs"]] == ["late log"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pageSize": "0"}, "pageSize"),
        ({"pageSize": "1001"}, "pageSize"),
        ({"pageSize": ""}, "pageSize"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "ten"}, "offset"),
    ],
)
def test_a_bad_page_of_spans_is_a_400_naming_the_parameter(api_client, params, field):
    trace = wide_trace(3)
    response = api_client.get(f"/api/traces/{trace.trace_id}", params)
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_an_offset_past_the_last_span_gives_an_empty_last_page(api_client):
    trace = wide_trace(3)
    body = api_client.get(f"/api/traces/{trace.trace_id}?offset=50").json()
    assert (body["spans"], body["logs"], body["next"], body["spanCount"]) == ([], [], None, 4)


@pytest.mark.parametrize("children", [3, 1_200])
def test_a_page_of_spans_costs_five_queries_however_big_the_trace(
    api_client, django_assert_num_queries, children
):
    trace = wide_trace(children)
    # Token, trace, span tree (ids and parents), the page's spans, their logs.
    with django_assert_num_queries(5):
        api_client.get(f"/api/traces/{trace.trace_id}")
    with django_assert_num_queries(5):
        api_client.get(f"/api/traces/{trace.trace_id}?offset=2&pageSize=2")


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_a_paged_span_reads_exactly_as_the_span_serializer_writes_it(zone):
    from datetime import UTC, datetime, timedelta

    from django.utils import timezone

    from observability.serializers import SpanSerializer, TreeSpanSerializer
    from observability.services import ingest_spans
    from tests.factories import agent_trace, new_trace_id, span

    trace = agent_trace(tool_error="boom", metadata={"k": [1, 2]})
    open_id = new_trace_id()
    start = datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)
    ingest_spans([span(open_id, started_at=start, ended_at=None, name="still running")])
    ingest_spans([span(open_id, started_at=start + timedelta(seconds=1), name="whole second")])
    spans = [*trace.spans.all(), *Trace.objects.get(trace_id=open_id).spans.all()]
    assert any(s.ended_at is None for s in spans) and any(s.input_tokens for s in spans)
    with timezone.override(zone):
        for depth, stored in enumerate(spans):
            stored.depth = depth
            assert TreeSpanSerializer(stored).data == {
                **SpanSerializer(stored).data,
                "depth": depth,
            }
