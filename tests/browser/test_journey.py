"""The whole scoring journey in a real browser with a real worker.

Log in, filter the trace list, select three traces, Score Selected, choose a
code scorer, Run Scorer, watch a score arrive on a trace, then go from the
scorer's results back to a trace.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import agent_trace
from tests.worker import qcluster_worker  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.browser


def test_a_user_scores_three_filtered_traces_and_follows_the_results_back(
    logged_in_page,
    live_server,
    artifacts,
    qcluster_worker,  # noqa: F811
):
    page = logged_in_page
    support = [agent_trace(name=f"support-agent-{i}") for i in range(4)]
    agent_trace(name="research-agent")
    page.goto(f"{live_server.url}/traces/")

    page.fill("#id_name", "support")
    expect(page.get_by_role("link", name="research-agent")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"name=support"))
    expect(page.locator("tr[data-trace-id]")).to_have_count(4)

    expect(page.locator("#score-selected")).to_be_disabled()
    page.check("#select-page")
    expect(page.locator("#selection-count")).to_have_text("4 traces selected")
    page.uncheck("#select-page")
    expect(page.locator("#selection-count")).to_have_text("0 traces selected")
    expect(page.locator("#score-selected")).to_be_disabled()

    chosen = support[:3]
    page.check(f"tr[data-trace-id='{chosen[0].trace_id}'] .select-trace")
    expect(page.locator("#selection-count")).to_have_text("1 trace selected")
    for trace in chosen:
        page.check(f"tr[data-trace-id='{trace.trace_id}'] .select-trace")
    expect(page.locator("#selection-count")).to_have_text("3 traces selected")
    page.screenshot(path=str(artifacts / "journey-1-trace-list.png"), full_page=True)

    page.click("#score-selected")
    dialog = page.locator("#score-modal")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("Choose the scorer to run on the 3 selected traces")).to_be_visible()
    # htmx wires the dropdown once the modal content has settled.
    page.wait_for_function("!document.querySelector('#modal-body .htmx-added, .htmx-settling')")
    page.select_option("#id_scorer_id", "completeness")
    expect(dialog.get_by_text("Score 3 traces with Completeness")).to_be_visible()
    page.screenshot(path=str(artifacts / "journey-2-modal.png"), full_page=True)
    page.click("#run-scorer")
    expect(page.get_by_text("Scoring started")).to_be_visible()
    expect(page.locator("#batch-progress")).to_contain_text("3 total")
    expect(page.locator("#batch-progress")).to_contain_text(
        "3 done / 0 failed / 3 total", timeout=30_000
    )
    expect(page.locator(f"tr[data-trace-id='{chosen[0].trace_id}'] .badge")).to_contain_text(
        "Completeness"
    )
    page.screenshot(path=str(artifacts / "journey-3-progress.png"), full_page=True)

    page.get_by_role("link", name=chosen[0].name, exact=True).click()
    scores = page.locator("#scores")
    expect(scores.get_by_role("link", name="Completeness")).to_be_visible(timeout=30_000)
    page.screenshot(path=str(artifacts / "journey-4-trace-detail.png"), full_page=True)

    scores.get_by_role("link", name="Completeness").first.click()
    expect(page).to_have_url(re.compile(r"/scorers/completeness/results/"))
    for trace in chosen:
        expect(page.locator(f"a[href='/traces/{trace.trace_id}/']").first).to_be_visible()
    page.screenshot(path=str(artifacts / "journey-5-results.png"), full_page=True)

    page.locator(f"a[href='/traces/{chosen[1].trace_id}/']").first.click()
    expect(page.locator("h1")).to_contain_text(chosen[1].name)
    page.goto(f"{live_server.url}/scorers/")
    page.screenshot(path=str(artifacts / "journey-6-scorers.png"), full_page=True)
