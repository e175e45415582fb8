"""A person sees what a judge batch will cost before running it, caps it, and sees the cap
stop it."""

import json

import pytest
from django_q.conf import Conf
from playwright.sync_api import expect

from scoring.models import ScoringBatch
from scoring.scorers.judging import NO_STRUCTURED_OUTPUT
from tests.factories import agent_trace
from tests.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.browser


def settled(page) -> None:
    expect(page.locator("#modal-body .htmx-added, .htmx-settling")).to_have_count(0)


def test_the_modal_estimates_a_judge_batch_and_its_cap_skips_the_rest(
    logged_in_page, live_server, settings, artifacts, monkeypatch
):
    monkeypatch.setattr(Conf, "SYNC", True)  # tasks run as they are queued, in the server
    page = logged_in_page
    traces = [agent_trace(name=f"support-agent-{i}") for i in range(2)]
    NO_STRUCTURED_OUTPUT.clear()
    with FakeOpenAI(default=Reply(json.dumps({"statements": []}))) as judge:
        settings.TRACESCORE_JUDGE_BASE_URL = judge.base_url
        settings.TRACESCORE_JUDGE_MODEL = "gpt-4o-mini"
        # 25 prompt and 9 completion tokens per answer: $0.000122 a Score.
        settings.TRACESCORE_JUDGE_PRICES = {"gpt-4o-mini": {"input": 2.0, "output": 8.0}}
        page.goto(f"{live_server.url}/traces/")
        for trace in traces:
            page.check(f"tr[data-trace-id='{trace.trace_id}'] .select-trace")
        page.click("#score-selected")
        dialog = page.locator("#score-modal")
        expect(dialog).to_be_visible()
        settled(page)
        dialog.locator("input[name=scorer_ids][value=answer-relevancy]").check()
        estimate = dialog.locator("#batch-estimate")
        expect(estimate).to_contain_text("Estimated judge cost: $")
        expect(estimate).to_contain_text("counted with tiktoken (o200k_base)")
        expect(estimate.locator("li[data-scorer=answer-relevancy]")).to_contain_text("2 scores")
        settled(page)
        dialog.locator("input[name=max_cost_usd]").fill("0.0001")
        dialog.locator("input[name=max_cost_usd]").dispatch_event("change")
        expect(dialog.locator(".cost-cap-field .status-error")).to_have_count(0)
        settled(page)
        page.screenshot(path=str(artifacts / "judge-cost-modal.png"), full_page=True)
        page.click("#run-scorer")
        progress = page.locator("#batch-progress")
        expect(progress).to_contain_text(
            "cost cap $0.0001: $0.000122 spent, 1 skipped by the cap", timeout=30_000
        )
        page.screenshot(path=str(artifacts / "judge-cost-progress.png"), full_page=True)
    assert ScoringBatch.objects.get().max_cost_usd == 0.0001
    assert len(judge.requests) == 1
