"""A person opens a judge score on the trace page and reads its steps."""

import json

import pytest
from playwright.sync_api import expect

from scoring.inputs import build_scoring_input
from scoring.scorers import registry
from scoring.scorers.judging import NO_STRUCTURED_OUTPUT
from tests.factories import EVIL, agent_trace, make_score
from tests.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.browser


def test_a_judge_score_opens_to_its_steps(logged_in_page, live_server, settings, artifacts):
    page = logged_in_page
    trace = agent_trace(answer=f"Your order shipped. {EVIL}")
    NO_STRUCTURED_OUTPUT.clear()
    with FakeOpenAI() as judge:
        settings.TRACESCORE_JUDGE_BASE_URL = judge.base_url
        settings.TRACESCORE_JUDGE_MODEL = "gpt-4o-mini"
        judge.replies = [
            Reply(json.dumps({"statements": ["Your order shipped.", EVIL]})),
            Reply(
                json.dumps(
                    {
                        "verdicts": [
                            {"item": "Your order shipped.", "verdict": "yes", "reason": "answers"},
                            {"item": EVIL, "verdict": "no", "reason": "markup, not an answer"},
                        ]
                    }
                )
            ),
        ]
        result = registry.get("answer-relevancy").score(build_scoring_input(trace.trace_id))
    make_score(
        trace,
        scorer_id="answer-relevancy",
        score=result.score,
        reason=result.reason,
        details=result.details,
    )
    page.on("dialog", lambda dialog: pytest.fail(f"a script ran: {dialog.message}"))
    page.goto(f"{live_server.url}/traces/{trace.trace_id}/")
    details = page.locator("details.score-details")
    expect(details.locator(".judge-raw").first).to_be_hidden()
    details.locator("summary").click()
    expect(details.locator(".judge-step")).to_have_count(2)
    expect(details.locator(".judge-parsed").nth(1)).to_contain_text('"verdict": "no"')
    expect(details.locator(".judge-raw").first).to_contain_text(EVIL)
    expect(details.locator("summary")).to_contain_text("2 judge steps · gpt-4o-mini")
    page.screenshot(path=str(artifacts / "judge-details.png"), full_page=True)
