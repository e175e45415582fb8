"""Pages work under the Content-Security-Policy: no inline style or script, and nothing lost.

The conftest fails every browser test on a CSP violation; these check that what
moved out of inline attributes (waterfall bars, span indentation, the scorer
switch) still does its job.
"""

import pytest
from playwright.sync_api import expect

from tests.factories import agent_trace, make_score

pytestmark = pytest.mark.browser


def test_the_waterfall_draws_bars_and_indents_child_spans(logged_in_page, live_server):
    page = logged_in_page
    trace = agent_trace(name="refund-agent", tool_error="orders-api timed out")
    response = page.goto(f"{live_server.url}/traces/{trace.trace_id}/")
    csp = response.headers["content-security-policy"]
    assert "style-src 'self'" in csp and "unsafe-inline" not in csp

    root = page.locator(".span-link").filter(has_text="refund-agent")
    tool = page.locator(".span-link").filter(has_text="lookup_order")
    padding = "el => getComputedStyle(el).paddingLeft"
    assert root.evaluate(padding) == "0px"
    assert tool.evaluate(padding) == page.evaluate(
        "getComputedStyle(document.documentElement).fontSize"
    )  # one level deep: 1rem

    # The tool call ran from 950 ms to 1300 ms of a 2400 ms trace, and failed.
    track = tool.locator(".bar-track").bounding_box()
    bar = tool.locator(".bar")
    box = bar.bounding_box()
    assert box["width"] / track["width"] == pytest.approx(350 / 2400, abs=0.01)
    assert (box["x"] - track["x"]) / track["width"] == pytest.approx(950 / 2400, abs=0.01)
    assert "bar-error" in bar.get_attribute("class")
    error_fill = bar.evaluate("el => getComputedStyle(el).fill")
    ok_fill = root.locator(".bar").evaluate("el => getComputedStyle(el).fill")
    assert error_fill != ok_fill

    # Opening a span swaps the panel with htmx; the rows keep their indentation.
    tool.click()
    expect(page.locator("#span-panel h2")).to_have_text("lookup_order")
    assert tool.evaluate(padding) != "0px"


def test_the_scorer_switch_opens_the_chosen_scorers_results(logged_in_page, live_server):
    page = logged_in_page
    make_score(agent_trace(name="support-agent"), scorer_id="completeness")
    page.goto(f"{live_server.url}/scorers/completeness/results/")
    switch = page.get_by_label("Switch scorer")
    other = switch.locator("option:not([selected])").first
    target, name = other.get_attribute("value"), other.inner_text()
    switch.select_option(value=target)
    expect(page).to_have_url(f"{live_server.url}{target}")
    expect(page.locator("h1")).to_have_text(f"{name} results")
