"""The whole scoring journey in a real browser with a real worker.

Log in, filter the trace list, select three traces, Score Selected, choose a
code scorer, Run Scorer, watch a score arrive on a trace, then go from the
scorer's results back to a trace. Then score two LLM spans of one trace with two
scorers from the trace's page, and score 2,000 selected traces from the list.
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
    expect(dialog.get_by_text("Choose the scorers to run on the 3 selected traces")).to_be_visible()
    # htmx wires the form once the modal content has settled.
    page.wait_for_function("!document.querySelector('#modal-body .htmx-added, .htmx-settling')")
    dialog.locator("input[name=scorer_ids][value=completeness]").check()
    expect(dialog.get_by_text("3 scores: 3 traces × 1 scorer")).to_be_visible()
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


def test_a_user_scores_two_llm_spans_with_two_scorers_and_follows_the_results_to_a_span(
    logged_in_page,
    live_server,
    artifacts,
    qcluster_worker,  # noqa: F811
):
    page = logged_in_page
    trace = agent_trace(name="span-journey")
    first, last = trace.spans.filter(span_type="llm_generation").order_by("started_at")
    page.goto(f"{live_server.url}/traces/{trace.trace_id}/")
    expect(page.locator("#score-spans")).to_be_disabled()
    for span in (first, last):
        page.check(f"li[data-span-row='{span.span_id}'] .select-span")
    expect(page.locator("#span-selection-count")).to_have_text("2 spans selected")

    page.click("#score-spans")
    dialog = page.locator("#score-modal")
    expect(dialog.get_by_text("Choose the scorers to run on the 2 selected spans")).to_be_visible()
    page.wait_for_function("!document.querySelector('#modal-body .htmx-added, .htmx-settling')")
    dialog.locator("input[name=scorer_ids][value=latency]").check()
    expect(dialog.get_by_text("2 scores: 2 spans × 1 scorer")).to_be_visible()
    page.wait_for_function("!document.querySelector('#modal-body .htmx-added, .htmx-settling')")
    dialog.locator("input[name=scorer_ids][value=tool-call-accuracy]").check()
    expect(dialog.get_by_text("4 scores: 2 spans × 2 scorers")).to_be_visible()
    expect(dialog.get_by_text("Will skip 2 of 2 targets it does not apply to")).to_be_visible()
    page.screenshot(path=str(artifacts / "spans-1-modal.png"), full_page=True)
    page.click("#run-scorer")
    expect(page.get_by_text("Scoring started")).to_be_visible()

    # When the batch finishes the page shows the badges on the two spans.
    for span in (first, last):
        badges = page.locator(f"li[data-span-row='{span.span_id}'] .span-badges")
        expect(badges.locator("[data-scorer=latency]")).to_contain_text(
            "Latency 1.00", timeout=30_000
        )
        expect(badges.locator("[data-scorer=tool-call-accuracy]")).to_contain_text("skipped")
    root_badges = page.locator(f"li[data-span-row='{trace.root_span_id}'] .span-badges .badge")
    expect(root_badges).to_have_count(0)
    page.screenshot(path=str(artifacts / "spans-2-badges.png"), full_page=True)

    page.goto(f"{live_server.url}/scorers/latency/results/")
    link = page.locator(f"a.span-link-result[href$='?span={last.span_id}']")
    expect(link).to_have_text(last.name)
    link.click()
    expect(page).to_have_url(re.compile(rf"/traces/{trace.trace_id}/\?span={last.span_id}$"))
    expect(page.locator(f"li[data-span-row='{last.span_id}']")).to_have_class(
        re.compile(r"\bselected\b")
    )
    panel = page.locator("#span-panel")
    expect(panel.get_by_text("Scores of this span")).to_be_visible()
    expect(panel.locator(".span-score")).to_have_count(2)
    page.screenshot(path=str(artifacts / "spans-3-linked-span.png"), full_page=True)


def test_a_user_scores_two_thousand_selected_traces_from_the_list(
    logged_in_page, live_server, artifacts
):
    from observability.models import Trace
    from scoring.models import ScoringBatch
    from tests.factories import new_trace_id

    page = logged_in_page
    Trace.objects.bulk_create(
        [Trace(trace_id=new_trace_id(), root_span_id="ab" * 8, has_root=True) for _ in range(2000)]
    )
    ids = list(Trace.objects.values_list("trace_id", flat=True))
    page.goto(f"{live_server.url}/traces/")
    # The selection a user builds by paging through 40 pages, as the page keeps it.
    page.evaluate("ids => sessionStorage.setItem('tracescore.selection', JSON.stringify(ids))", ids)
    page.reload()
    expect(page.locator("#selection-count")).to_have_text("2000 traces selected")
    page.click("#score-selected")
    dialog = page.locator("#score-modal")
    expect(
        dialog.get_by_text("Choose the scorers to run on the 2000 selected traces")
    ).to_be_visible()
    page.wait_for_function("!document.querySelector('#modal-body .htmx-added, .htmx-settling')")
    dialog.locator("input[name=scorer_ids][value=latency]").check()
    expect(dialog.get_by_text("2000 scores: 2000 traces × 1 scorer")).to_be_visible()
    page.click("#run-scorer")
    expect(page.get_by_text("Scoring started")).to_be_visible()
    expect(page.get_by_text("2000 traces queued for Latency")).to_be_visible()
    expect(page.locator("#selection-count")).to_have_text("0 traces selected")
    page.screenshot(path=str(artifacts / "two-thousand.png"), full_page=True)
    assert ScoringBatch.objects.get().trace_count == 2000
