"""Trace detail for big traces: deep parent chains and pages of spans in tree order."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from observability.services import ingest_spans
from tests.factories import chain_trace, new_span_id, new_trace_id, span, wide_trace

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def row_ids(html: str) -> list[str]:
    """The span ids of the waterfall rows, top to bottom."""
    return re.findall(r'class="span-link"[^>]*data-span-id="([0-9a-f]{16})"', html)


def indents(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'class="span-link" data-depth="(\d+)"', html)]


def more_link(html: str) -> tuple[str, str] | None:
    """The href and hx-get of the "Load more spans" link, if the page has one."""
    found = re.search(r'<li class="more-spans"><a href="([^"]+)" hx-get="([^"]+)"', html)
    return (found[1].replace("&amp;", "&"), found[2].replace("&amp;", "&")) if found else None


@pytest.mark.parametrize("depth", [1_500, 10_000])
def test_a_deep_parent_chain_renders_with_its_indentation_capped(alice_client, depth):
    trace = chain_trace(depth)
    response = alice_client.get(f"/traces/{trace.trace_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert len(row_ids(html)) == 500
    assert f"1–500 of {depth:,}" in html
    assert indents(html)[:3] == [0, 1, 2]
    assert max(indents(html)) == 24  # not 499rem: the row says how deep it is instead
    assert "499 deep" in html
    assert len(html) < 1_000_000


@pytest.mark.parametrize("depth", [1_500, 10_000])
def test_the_deepest_span_of_a_chain_opens_on_its_page(alice_client, depth):
    trace = chain_trace(depth)
    deepest = trace.spans.get(name=f"level {depth - 1}")
    response = alice_client.get(f"/traces/{trace.trace_id}/?span={deepest.span_id}")
    assert response.status_code == 200
    html = response.content.decode()
    last_page = (depth - 1) // 500 * 500
    assert f"{last_page + 1:,}–{depth:,} of {depth:,}" in html
    assert row_ids(html)[-1] == deepest.span_id
    assert f'<li class="span-row selected" data-span-row="{deepest.span_id}">' in html
    panel = html.split('id="span-panel"')[1]
    assert f"<h2>level {depth - 1}</h2>" in panel
    assert f"&quot;level&quot;: {depth - 1}" in panel
    assert f"{depth - 1:,} deep" in html


def test_spans_are_listed_in_tree_order_not_start_order(alice_client):
    trace_id = new_trace_id()
    root, a, b = new_span_id(), new_span_id(), new_span_id()
    a1, a2, b1 = new_span_id(), new_span_id(), new_span_id()
    started = {root: 0, a: 1, b: 2, b1: 3, a1: 5, a2: 6}
    parents = {a: root, b: root, a1: a, a2: a, b1: b}
    ingest_spans(
        [
            span(trace_id, span_id=i, parent_span_id=parents.get(i), started_at=T0 + n * MS)
            for i, n in started.items()
        ]
    )
    html = alice_client.get(f"/traces/{trace_id}/").content.decode()
    assert row_ids(html) == [root, a, a1, a2, b, b1]
    assert indents(html) == [0, 1, 2, 2, 1, 2]


def test_spans_in_a_parent_cycle_are_still_shown(alice_client):
    trace_id = new_trace_id()
    root, x, y = new_span_id(), new_span_id(), new_span_id()
    ingest_spans(
        [
            span(trace_id, span_id=root, started_at=T0),
            span(trace_id, span_id=x, parent_span_id=y, started_at=T0 + MS),
            span(trace_id, span_id=y, parent_span_id=x, started_at=T0 + 2 * MS),
        ]
    )
    html = alice_client.get(f"/traces/{trace_id}/").content.decode()
    assert row_ids(html) == [root, x, y]


def test_a_big_trace_shows_its_first_500_spans_and_loads_the_rest_with_htmx(alice_client):
    trace = wide_trace(1_200)
    url = f"/traces/{trace.trace_id}/"
    first = alice_client.get(url).content.decode()
    assert "1–500 of 1,201" in first
    assert "Load more spans (501–1,000 of 1,201)" in first
    href, hx_get = more_link(first)
    assert (href, hx_get) == ("?offset=500", "?offset=500&part=spans")
    seen = row_ids(first)

    second = alice_client.get(url + hx_get, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in second and 'id="span-panel"' not in second
    assert len(row_ids(second)) == 500
    assert "Load more spans (1,001–1,201 of 1,201)" in second
    seen += row_ids(second)

    third = alice_client.get(url + more_link(second)[1], HTTP_HX_REQUEST="true").content.decode()
    assert len(row_ids(third)) == 201
    assert more_link(third) is None
    seen += row_ids(third)

    in_order = [trace.root_span_id] + [
        s.span_id for s in trace.spans.exclude(span_id=trace.root_span_id).order_by("started_at")
    ]
    assert seen == in_order


def test_the_load_more_link_works_without_javascript(alice_client):
    trace = wide_trace(1_200)
    url = f"/traces/{trace.trace_id}/"
    page = alice_client.get(url + "?offset=500").content.decode()
    assert "<html" in page
    assert "501–1,000 of 1,201" in page
    assert row_ids(page)[0] == trace.spans.get(name="step 499").span_id
    assert '<a href="?offset=0">Show the spans before these</a>' in page
    assert more_link(page)[0] == "?offset=1000"
    # The panel still shows the root, which is on the first page.
    assert "<h2>wide-root</h2>" in page.split('id="span-panel"')[1]


def test_the_waterfall_of_a_later_page_is_scaled_to_the_whole_trace(alice_client):
    trace = wide_trace(1_200)
    page = alice_client.get(f"/traces/{trace.trace_id}/?offset=1000").content.decode()
    # step 999 starts 1,000 ms into a 1,210 ms trace.
    assert re.search(r'x="82\.6\d" width="0\.4\d"', page)


def test_a_selected_span_off_the_first_page_is_shown_on_its_page(alice_client):
    trace = wide_trace(1_200)
    step = trace.spans.get(name="step 900")
    html = alice_client.get(f"/traces/{trace.trace_id}/?span={step.span_id}").content.decode()
    assert "501–1,000 of 1,201" in html
    assert step.span_id in row_ids(html)
    assert f'<li class="span-row selected" data-span-row="{step.span_id}">' in html
    assert "<h2>step 900</h2>" in html.split('id="span-panel"')[1]


def test_a_selected_span_is_shown_in_the_panel_even_when_its_row_is_on_another_page(alice_client):
    trace = wide_trace(1_200)
    step = trace.spans.get(name="step 900")
    html = alice_client.get(
        f"/traces/{trace.trace_id}/?offset=0&span={step.span_id}"
    ).content.decode()
    assert "1–500 of 1,201" in html
    assert step.span_id not in row_ids(html)
    panel = html.split('id="span-panel"')[1]
    assert "<h2>step 900</h2>" in panel and "&quot;step&quot;: 900" in panel


def test_clicking_a_span_on_a_loaded_page_opens_its_panel(alice_client):
    trace = wide_trace(1_200)
    step = trace.spans.get(name="step 1100")
    panel = alice_client.get(
        f"/traces/{trace.trace_id}/?span={step.span_id}", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in panel
    assert "<h2>step 1100</h2>" in panel


@pytest.mark.parametrize("offset", ["-1", "ten", "1e3", "٣"])
def test_a_broken_offset_is_a_readable_400(alice_client, offset):
    trace = wide_trace(3)
    response = alice_client.get(f"/traces/{trace.trace_id}/", {"offset": offset})
    assert response.status_code == 400
    assert "offset must be a whole number of spans" in response.content.decode()


def test_an_offset_past_the_last_span_says_so(alice_client):
    trace = wide_trace(3)
    html = alice_client.get(f"/traces/{trace.trace_id}/?offset=900").content.decode()
    assert "No spans here: this trace has 4." in html
    assert '<a href="?offset=0">Show the spans before these</a>' in html


@pytest.mark.parametrize("children", [3, 1_200])
def test_the_pages_of_a_big_trace_cost_a_fixed_number_of_queries(
    alice_client, django_assert_num_queries, children
):
    trace = wide_trace(children)
    url = f"/traces/{trace.trace_id}/"
    step = trace.spans.get(name="step 2")
    # session, user, trace, span tree (ids and parents), the selected span (and the root), the
    # panel's logs, the page's rows, the panel's scores, the rows' score badges, the scores table,
    # and the Rules section (scoring.rules.rule_outcomes_for_trace with no rule: the trace, its
    # outcomes, the active rules); spans that arrived after a score cost one more only when some
    # span arrived after a score was made (not here)
    with django_assert_num_queries(13):
        alice_client.get(url)
    with django_assert_num_queries(13):
        alice_client.get(f"{url}?offset=0&span={step.span_id}")
    # htmx "Load more spans": session, user, trace, span tree, the page's rows, their badges
    with django_assert_num_queries(6):
        alice_client.get(f"{url}?offset=0&part=spans", HTTP_HX_REQUEST="true")
