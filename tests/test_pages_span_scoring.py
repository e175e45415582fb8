"""Span scoring on the pages: span checkboxes and badges, the span panel's scores,
the modal for picked spans, and results rows that link to their span."""

import json

import pytest

from tests.factories import EVIL, agent_trace
from tests.factories import make_score as add_score

pytestmark = pytest.mark.django_db


def test_each_span_shows_its_latest_score_badges_and_a_checkbox(alice_client):
    trace = agent_trace()
    first, last = trace.spans.filter(span_type="llm_generation").order_by("started_at")
    add_score(trace, "latency", 0.2, span_id=first.span_id, span_name=first.name)
    add_score(trace, "latency", 0.9, span_id=first.span_id, span_name=first.name)  # newer
    add_score(trace, "completeness", None, status="skipped", span_id=last.span_id, reason=EVIL)
    html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert html.count('class="select-span"') == 4
    row = html[html.index(f'data-span-row="{first.span_id}"') :]
    row = row[: row.index("</li>")]
    assert 'data-scorer="latency">Latency 0.90</span>' in row and "0.20" not in row
    row = html[html.index(f'data-span-row="{last.span_id}"') :]
    row = row[: row.index("</li>")]
    assert ">Completeness skipped</span>" in row
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert 'id="score-spans"' in html and "/batches/new/?mode=spans" in html


def test_a_span_can_be_linked_to_and_its_panel_lists_its_scores(alice_client):
    trace = agent_trace()
    tool = trace.spans.get(span_type="tool_call")
    add_score(
        trace, "json-validity", 1.0, span_id=tool.span_id, span_name=tool.name, reason="Valid JSON."
    )
    add_score(trace, "latency", 0.5, span_id=trace.root_span_id, reason="Root only.")
    html = alice_client.get(f"/traces/{trace.trace_id}/?span={tool.span_id}").content.decode()
    panel = html[html.index('id="span-panel"') : html.index('id="scores"')]
    assert "<h2>lookup_order</h2>" in panel
    assert "Scores of this span" in panel and "Valid JSON." in panel
    assert "Root only." not in panel
    assert f'href="?span={tool.span_id}" class="score-span-link">lookup_order</a>' in html


def test_the_modal_for_picked_spans_scores_exactly_those_spans(alice_client):
    trace = agent_trace()
    spans = list(trace.spans.filter(span_type="llm_generation"))
    opened = alice_client.get("/batches/new/?mode=spans&count=2", HTTP_HX_REQUEST="true")
    html = opened.content.decode()
    assert "Score selected spans" in html and 'name="scope" value="spans"' in html
    assert "Every tool call" not in html
    targets = [{"traceId": trace.trace_id, "spanId": s.span_id} for s in spans]
    answer = alice_client.post(
        "/batches/new/",
        {
            "selection": json.dumps({"targets": targets}),
            "scorer_ids": ["latency", "tool-call-accuracy"],
            "scope": "spans",
            "action": "run",
        },
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 200
    assert "2 spans in 1 trace queued" in answer.content.decode()
    assert "Tool-call accuracy skips 2 it does not apply to." in answer.content.decode()
    assert json.loads(answer["HX-Trigger"])["batchStarted"]["mode"] == "spans"


def test_results_rows_name_the_span_and_its_type_and_link_to_it(alice_client):
    trace = agent_trace()
    tool = trace.spans.get(span_type="tool_call")
    add_score(
        trace, "latency", 1.0, span_id=tool.span_id, span_name=tool.name, span_type="tool_call"
    )
    add_score(
        trace,
        "latency",
        1.0,
        span_id=trace.root_span_id,
        span_name="support-agent",
        span_type="agent_run",
    )
    html = alice_client.get("/scorers/latency/results/?spanType=tool_call").content.decode()
    assert (
        f'/traces/{trace.trace_id}/?span={tool.span_id}" class="span-link-result">lookup_order</a>'
        in html
    )
    assert '<div class="muted small span-type">tool_call</div>' in html
    assert 'class="span-link-result">support-agent' not in html
