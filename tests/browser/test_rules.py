"""Scoring rules in a real browser with a real worker.

Filter the trace list, "Select all matching", "Save as rule", run the rule on
the existing traces, and read what it did on the rule page and on a trace's
page; then "Score now" on everything a filter matches.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import agent_trace
from tests.worker import qcluster_worker  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.browser


def settled(page) -> None:
    """Wait until htmx has settled the modal (a locator: the CSP allows no eval)."""
    expect(page.locator("#modal-body .htmx-added, .htmx-settling")).to_have_count(0)


def count_of(page, outcome: str) -> int:
    text = page.locator(f"li[data-outcome='{outcome}'] strong").inner_text()
    return int(text)


def test_a_user_saves_a_filter_as_a_rule_runs_it_and_reads_its_counts(
    logged_in_page,
    live_server,
    artifacts,
    qcluster_worker,  # noqa: F811
):
    page = logged_in_page
    support = [agent_trace(name=f"support-agent-{i}") for i in range(12)]
    agent_trace(name="research-agent")
    page.goto(f"{live_server.url}/traces/")

    page.fill("#id_name", "support")
    expect(page).to_have_url(re.compile(r"name=support"))
    expect(page.locator("tr[data-trace-id]")).to_have_count(12)
    expect(page.locator("#select-matching")).to_have_text(
        "Select all 12 traces matching this filter"
    )
    page.click("#select-matching")
    dialog = page.locator("#score-modal")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("All 12 matching traces selected")).to_be_visible()
    page.screenshot(path=str(artifacts / "rules-1-select-all.png"), full_page=True)

    dialog.locator("#save-as-rule").click()
    expect(page).to_have_url(re.compile(r"/rules/new/\?name=support"))
    expect(page.locator("input[name=filter_name]")).to_have_value("support")
    page.fill("input[name=name]", "Support answers")
    page.check("input[name=scorer_ids][value=completeness]")
    page.fill("input[name=sample_rate]", "50")
    page.screenshot(path=str(artifacts / "rules-2-form.png"), full_page=True)
    page.click("#save-rule")
    expect(page.locator("h1")).to_have_text("Rule Support answers")
    expect(page.get_by_text("Rule 'Support answers' created.")).to_be_visible()
    expect(page.locator(".sample-rate")).to_have_text("50 %")
    expect(page.locator("li[data-outcome='considered'] strong")).to_have_text("0")

    page.click("#run-backfill")
    expect(page).to_have_url(re.compile(r"/batches/[0-9a-f-]+/$"))
    progress = page.locator("#batch-page-progress")
    expect(progress).to_contain_text("finished", timeout=30_000)
    page.screenshot(path=str(artifacts / "rules-3-batch.png"), full_page=True)

    page.get_by_role("link", name="← Rule Support answers").click()
    expect(page.locator("li[data-outcome='considered'] strong")).to_have_text("12")
    scored, sampled = count_of(page, "scored"), count_of(page, "sampled_out")
    assert scored + sampled == 12 and scored > 0 and sampled > 0
    assert count_of(page, "pending") == 0 and count_of(page, "failed") == 0
    page.screenshot(path=str(artifacts / "rules-4-rule-page.png"), full_page=True)

    page.locator("li[data-outcome='sampled_out'] a").click()
    expect(page).to_have_url(re.compile(r"outcome=sampled_out"))
    rows = page.locator("tr.audit-row")
    expect(rows).to_have_count(sampled)
    expect(rows.first.locator(".reason")).to_contain_text("50 %")

    rows.first.locator("a.trace-link").click()
    rules = page.locator(".rule-outcomes")
    expect(rules.locator("li[data-outcome='sampled_out']")).to_contain_text("Rule Support answers:")
    page.screenshot(path=str(artifacts / "rules-5-trace-rules.png"), full_page=True)
    assert {t.trace_id for t in support}  # the traces the rule looked at


def test_a_user_scores_every_trace_a_filter_matches_from_the_list(
    logged_in_page,
    live_server,
    artifacts,
    qcluster_worker,  # noqa: F811
):
    page = logged_in_page
    for i in range(5):
        agent_trace(name=f"checkout-{i}")
    agent_trace(name="research-agent")
    page.goto(f"{live_server.url}/traces/?name=checkout")
    expect(page.locator("tr[data-trace-id]")).to_have_count(5)
    expect(page.locator("#matching-count")).to_have_text("5")
    page.click("#select-matching")
    dialog = page.locator("#score-modal")
    expect(dialog.get_by_text("All 5 matching traces selected")).to_be_visible()
    settled(page)
    dialog.locator("input[name=scorer_ids][value=completeness]").check()
    dialog.locator("#score-matching").click()
    expect(page).to_have_url(re.compile(r"/batches/[0-9a-f-]+/$"))
    expect(page.locator("#batch-page-progress")).to_contain_text(
        "5 done / 0 failed / 5 total", timeout=30_000
    )
    expect(page.locator(".facts")).to_contain_text("name contains “checkout”")
    page.screenshot(path=str(artifacts / "rules-6-score-now.png"), full_page=True)


def test_a_user_pauses_edits_and_deletes_a_rule(logged_in_page, live_server, artifacts):
    from scoring import rules

    page = logged_in_page
    rules.create_rule(name="Answer quality", scorer_ids=["completeness"], filter={"name": "x"})
    page.get_by_role("link", name="Rules").click()
    expect(page.locator("tr.rule-row")).to_contain_text("name contains “x”")
    page.screenshot(path=str(artifacts / "rules-7-list.png"), full_page=True)
    page.get_by_role("link", name="Answer quality").click()
    page.click("#pause-rule")
    expect(page.locator(".rule-state")).to_have_text("Paused")
    page.click("#resume-rule")
    expect(page.locator(".rule-state")).to_have_text("Active, live")

    page.get_by_role("link", name="Edit").click()
    page.fill("input[name=sample_rate]", "25")
    page.fill("textarea[name=filter_metadata]", "env=prod")
    page.click("#save-rule")
    expect(page.locator(".rule-version")).to_have_text("2")
    expect(page.locator(".sample-rate")).to_have_text("25 %")
    expect(page.locator(".rule-filter")).to_contain_text("metadata env = “prod”")

    page.get_by_role("link", name="Delete").click()
    page.click("#confirm-delete")
    expect(page.get_by_text("No rules yet.")).to_be_visible()


def test_a_live_rule_scores_a_new_trace_on_its_own_and_the_trace_page_says_so(
    logged_in_page,
    live_server,
    artifacts,
    qcluster_worker,  # noqa: F811
):
    page = logged_in_page
    page.goto(f"{live_server.url}/rules/new/?name=live-support")
    page.fill("input[name=name]", "Live support")
    page.check("input[name=scorer_ids][value=completeness]")
    page.click("#save-rule")
    expect(page.locator(".rule-state")).to_have_text("Active, live")

    # A new trace arrives (through ingest, as an exporter's would); nobody clicks anything.
    trace = agent_trace(name="live-support-1")
    agent_trace(name="research-agent")
    for _ in range(60):
        page.reload()
        if page.locator("li[data-outcome='scored'] strong").inner_text() == "1":
            break
        page.wait_for_timeout(500)
    expect(page.locator("li[data-outcome='scored'] strong")).to_have_text("1")
    expect(page.locator("li[data-outcome='considered'] strong")).to_have_text("1")
    page.screenshot(path=str(artifacts / "rules-8-live.png"), full_page=True)

    page.locator("tr.audit-row a.trace-link").click()
    expect(page).to_have_url(re.compile(trace.trace_id))
    outcome = page.locator(".rule-outcomes li[data-outcome='scored']")
    expect(outcome).to_contain_text("Rule Live support: scored")
    outcome.locator("a.rule-score-link").click()
    expect(page).to_have_url(re.compile(r"#score-\d+$"))
