"""A person pages through a big trace's spans in the browser."""

import pytest
from playwright.sync_api import expect

from tests.factories import wide_trace

pytestmark = pytest.mark.browser


def test_load_more_spans_appends_the_next_page_and_a_span_on_it_opens(logged_in_page, live_server):
    page = logged_in_page
    trace = wide_trace(1_200)
    page.goto(f"{live_server.url}/traces/{trace.trace_id}/")
    rows = page.locator(".waterfall .span-row")
    expect(rows).to_have_count(500)
    expect(page.get_by_text("1–500 of 1,201")).to_be_visible()

    page.get_by_role("link", name="Load more spans (501–1,000 of 1,201)").click()
    expect(rows).to_have_count(1_000)
    page.get_by_role("link", name="Load more spans (1,001–1,201 of 1,201)").click()
    expect(rows).to_have_count(1_201)
    expect(page.locator(".more-spans")).to_have_count(0)
    assert page.url == f"{live_server.url}/traces/{trace.trace_id}/"  # appended in place

    rows.filter(has_text="step 1150").click()
    expect(page.locator("#span-panel h2")).to_have_text("step 1150")
    expect(page.locator("#span-panel .span-input")).to_contain_text('"step": 1150')
