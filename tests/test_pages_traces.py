"""The trace list and trace detail pages, as a signed-in user sees them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from observability.services import ingest_spans
from tests.factories import EVIL, add_log, agent_trace, new_trace_id, span
from tests.factories import make_score as add_score

pytestmark = pytest.mark.django_db


def test_the_trace_list_needs_a_login(client):
    response = client.get("/traces/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_trace_list_shows_each_trace_with_its_latest_score_per_scorer(alice_client):
    trace = agent_trace(name="support-agent")
    add_score(trace, score=0.2)
    add_score(trace, score=0.9)
    add_score(trace, scorer_id="error-free", score=1.0)
    response = alice_client.get("/traces/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "support-agent" in html
    assert "Score Selected" in html
    assert "0 traces selected" in html
    assert "Completeness 0.90" in html
    assert "Completeness 0.2" not in html
    assert "Error-Free" in html


def test_the_trace_list_runs_a_fixed_number_of_queries_whatever_the_number_of_rows(
    alice_client, django_assert_num_queries
):
    for i in range(12):
        add_score(agent_trace(name=f"agent-{i}"))
    # session, user, traces page, scores of the page
    with django_assert_num_queries(4):
        response = alice_client.get("/traces/", HTTP_HX_REQUEST="true")
    assert response.content.decode().count("data-trace-id=") == 12


def test_an_htmx_request_gets_only_the_table(alice_client):
    agent_trace(name="support-agent")
    response = alice_client.get("/traces/?name=support", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "support-agent" in html
    assert "<table" in html
    assert "<html" not in html
    assert 'id="trace-filters"' not in html


def test_the_name_filter_keeps_only_matching_traces(alice_client):
    agent_trace(name="support-agent")
    agent_trace(name="research-agent")
    html = alice_client.get("/traces/?name=research").content.decode()
    assert "research-agent" in html
    assert "support-agent" not in html


def test_the_status_filter_keeps_only_failed_traces(alice_client):
    agent_trace(name="happy-agent")
    trace_id = new_trace_id()
    ingest_spans([span(trace_id, name="broken-agent", status="error", error_message="boom")])
    html = alice_client.get("/traces/?status=error").content.decode()
    assert "broken-agent" in html
    assert "happy-agent" not in html


def test_the_scored_by_filter_keeps_only_traces_with_that_scorer(alice_client):
    add_score(agent_trace(name="scored-agent"))
    agent_trace(name="unscored-agent")
    html = alice_client.get("/traces/?scored_by=completeness").content.decode()
    assert "scored-agent" in html
    assert "unscored-agent" not in html


def test_the_date_filter_keeps_only_traces_started_in_the_range(alice_client):
    agent_trace(name="old-agent", started_at=timezone.now() - timedelta(days=30))
    agent_trace(name="new-agent")
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    html = alice_client.get(f"/traces/?started_after={since}").content.decode()
    assert "new-agent" in html
    assert "old-agent" not in html


def test_the_list_pages_with_a_cursor_to_older_traces(alice_client):
    start = timezone.now() - timedelta(hours=2)
    for i in range(55):
        agent_trace(name=f"agent-{i:02d}", started_at=start + timedelta(minutes=i))
    first = alice_client.get("/traces/").content.decode()
    assert "agent-54" in first
    assert "agent-04" not in first
    assert "Older" in first
    cursor = first.split("cursor=")[1].split('"')[0].split("&")[0]
    second = alice_client.get(f"/traces/?cursor={cursor}").content.decode()
    assert "agent-04" in second
    assert "agent-54" not in second


def test_a_broken_cursor_is_a_clear_400(alice_client):
    response = alice_client.get("/traces/?cursor=not-a-cursor")
    assert response.status_code == 400
    assert b"cursor" in response.content


def test_untrusted_span_content_shows_as_text_on_the_list_and_the_detail(alice_client):
    trace_id = new_trace_id()
    ingest_spans([span(trace_id, name=EVIL, output=EVIL, input=EVIL)])
    for url in ("/traces/", f"/traces/{trace_id}/"):
        html = alice_client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_detail_page_shows_the_header_span_tree_and_the_root_span(alice_client):
    trace = agent_trace(name="support-agent", question="Where is my order 1042?")
    html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert "support-agent" in html
    assert "lookup_order" in html
    assert "chat gpt-4o-mini" in html
    assert "Where is my order 1042?" in html
    assert "select this trace on the" in html and "and click Score Selected." in html


def test_clicking_a_span_loads_its_input_output_and_attributes_as_a_partial(alice_client):
    trace = agent_trace()
    tool = trace.spans.get(name="lookup_order")
    response = alice_client.get(
        f"/traces/{trace.trace_id}/?span={tool.span_id}", HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert "<html" not in html
    assert "&quot;order_id&quot;: &quot;1042&quot;" in html
    assert "shipped" in html


def test_the_scores_panel_lists_scores_and_polls_while_one_is_pending(alice_client):
    trace = agent_trace()
    add_score(trace, score=0.75, reason="All the parts are there.")
    add_score(trace, scorer_id="error-free", score=None, status="pending")
    html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert "All the parts are there." in html
    assert "/scorers/completeness/results/" in html
    assert "every 2s" in html
    part = alice_client.get(
        f"/traces/{trace.trace_id}/?part=scores", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in part
    assert "All the parts are there." in part


def test_the_scores_panel_stops_polling_when_nothing_is_pending(alice_client):
    trace = agent_trace()
    add_score(trace, score=0.75)
    html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert "every 2s" not in html


def test_an_unknown_trace_is_a_404(alice_client):
    response = alice_client.get(f"/traces/{'f' * 32}/")
    assert response.status_code == 404
    assert f"No trace with id {'f' * 32}." in response.content.decode()
    assert "Back to the traces" in response.content.decode()


def test_a_spans_panel_lists_its_logs_with_time_severity_body_and_attributes(alice_client):
    trace = agent_trace()
    tool = trace.spans.get(name="lookup_order")
    at = tool.started_at + timedelta(milliseconds=20)
    add_log(
        trace.trace_id,
        tool.span_id,
        {"order": "1042", "carrier": "DHL"},
        severity_number=13,
        severity_text="WARN",
        attributes={"http.status_code": "429"},
        at=at,
    )
    add_log(trace.trace_id, trace.root_span_id, "Agent started")

    html = alice_client.get(f"/traces/{trace.trace_id}/?span={tool.span_id}").content.decode()
    panel = html.split('id="span-panel"')[1]
    assert 'Logs <span class="muted">(1)</span>' in panel
    assert timezone.localtime(at).strftime("%H:%M:%S.%f") in panel
    assert '<span class="log-severity">WARN</span>' in panel
    assert "&quot;carrier&quot;: &quot;DHL&quot;" in panel  # pretty-printed on the server
    assert "&quot;http.status_code&quot;: &quot;429&quot;" in panel
    assert "Agent started" not in panel  # the root's log stays in the root's panel


def test_hostile_log_content_shows_as_text_in_the_panel(alice_client):
    trace = agent_trace()
    add_log(trace.trace_id, trace.root_span_id, EVIL, severity_text=EVIL, attributes={EVIL: EVIL})
    html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4


def test_logs_of_no_span_or_of_a_missing_span_show_in_the_root_panel_marked_as_such(alice_client):
    trace = agent_trace()
    add_log(trace.trace_id, "", "trace-level note")
    add_log(trace.trace_id, "00000000000000ff", "from a span still on its way")
    root_html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert "trace-level note" in root_html and "not tied to a span" in root_html
    assert "from a span still on its way" in root_html
    assert "from span <code>00000000000000ff</code>, not in this trace" in root_html
    tool = trace.spans.get(name="lookup_order")
    tool_html = alice_client.get(f"/traces/{trace.trace_id}/?span={tool.span_id}").content.decode()
    assert "trace-level note" not in tool_html


def test_a_panel_without_logs_shows_no_logs_heading(alice_client):
    trace = agent_trace()
    html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert "span-logs" not in html


@pytest.mark.parametrize("size", [1, 8])
def test_the_detail_page_runs_a_fixed_number_of_queries_whatever_the_number_of_spans_and_logs(
    alice_client, django_assert_num_queries, size
):
    trace = agent_trace()
    spans = [span(trace.trace_id, parent_span_id=trace.root_span_id) for _ in range(size)]
    ingest_spans(spans)
    for record in spans:
        for n in range(size):
            add_log(trace.trace_id, record.span_id, f"log {n}")
        add_log(trace.trace_id, trace.root_span_id, f"root log {record.span_id}")
    for _ in range(size):
        add_score(trace)
    url = f"/traces/{trace.trace_id}/"
    # session, user, trace, span tree (ids and parents), the selected span (and the root), the
    # panel's logs, the page's rows, the panel's scores, the rows' score badges, the scores table,
    # and the Rules section (scoring.rules.rule_outcomes_for_trace with no rule: the trace, its
    # outcomes, the active rules); spans that arrived after a score cost one more only when some
    # span arrived after a score was made (not here)
    with django_assert_num_queries(13):
        page = alice_client.get(url).content.decode()
    assert page.count('class="log-record') == size
    # htmx span click: session, user, trace, the span (and the root), the panel's logs, its scores
    with django_assert_num_queries(6):
        panel = alice_client.get(f"{url}?span={spans[0].span_id}", HTTP_HX_REQUEST="true")
    assert panel.content.decode().count('class="log-record') == size


@pytest.mark.parametrize("rule_count", [1, 5])
def test_the_rules_section_of_the_detail_page_costs_the_same_whatever_the_number_of_rules(
    alice_client, django_assert_num_queries, rule_count
):
    from scoring import rules

    trace = agent_trace()
    for i in range(rule_count):
        rules.create_rule(
            name=f"Rule {i}",
            scorer_ids=["completeness"],
            filter={"type": "agent_run"} if i % 2 else {"name": "nothing-like-it"},
            live=bool(i % 2),
        )
    url = f"/traces/{trace.trace_id}/"
    # as the page without rules: the Rules section is 3 queries (the trace's outcomes, the
    # rules, and the trace with one filter check per rule)
    with django_assert_num_queries(13):
        page = alice_client.get(url).content.decode()
    assert page.count("not matched:") == (rule_count + 1) // 2
    assert "Rule 0" in page
