"""A judge score read step by step on the trace page and the results page, with its cost.

The judge runs for real against the loopback OpenAI-compatible server and the
worker task records its Score; hostile content in the trace and in the judge's
answers must show as text.
"""

import json

import pytest

from scoring import services
from scoring.models import Score
from scoring.scorers.judging import NO_STRUCTURED_OUTPUT
from tests.factories import EVIL, agent_trace
from tests.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def judge(settings):
    NO_STRUCTURED_OUTPUT.clear()
    with FakeOpenAI() as server:
        settings.TRACESCORE_JUDGE_BASE_URL = server.base_url
        settings.TRACESCORE_JUDGE_MODEL = "judge-test-model"
        settings.TRACESCORE_JUDGE_MAX_RETRIES = 0
        settings.TRACESCORE_JUDGE_PRICES = {"judge-test-model": {"input": 2.0, "output": 8.0}}
        yield server
    NO_STRUCTURED_OUTPUT.clear()


def run_batch(trace, sync_tasks, scorer_id="answer-relevancy") -> Score:
    with sync_tasks(execute=True):
        batch = services.start_batch(scorer_id=scorer_id, trace_ids=[trace.trace_id])
    return batch.scores.get()


def test_a_judge_score_opens_to_every_step_with_model_tokens_and_cost(
    alice_client, judge, sync_tasks
):
    trace = agent_trace(answer=f"Shipped. {EVIL}")
    judge.replies = [
        Reply(json.dumps({"statements": ["Shipped.", EVIL]}), input_tokens=1000, output_tokens=100),
        Reply(
            json.dumps(
                {
                    "verdicts": [
                        {"item": "Shipped.", "verdict": "yes", "reason": "answers"},
                        {"item": EVIL, "verdict": "no", "reason": EVIL},
                    ]
                }
            ),
            input_tokens=2000,
            output_tokens=200,
        ),
    ]
    score = run_batch(trace, sync_tasks)
    assert (score.status, score.score) == ("succeeded", 0.5)

    for url in (f"/traces/{trace.trace_id}/", "/scorers/answer-relevancy/results/"):
        html = alice_client.get(url).content.decode()
        assert '<details class="score-details">' in html
        assert "2 judge steps · judge-test-model · 3,000 in + 300 out tokens · $0.0084" in html
        assert "1. extract" in html and "2. verdicts" in html
        assert "Where is my order 1042?" in html  # the verdict step's prompt
        assert "&quot;verdict&quot;: &quot;no&quot;" in html  # parsed verdicts, pretty-printed
        assert "1,000 in + 100 out tokens · $0.0028" in html  # the first step alone
        assert EVIL not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_failed_judge_shows_the_answer_it_could_not_parse(alice_client, judge, sync_tasks):
    trace = agent_trace()
    judge.replies = [Reply(f"Sure! {EVIL}"), Reply(f"Still not JSON {EVIL}")]
    score = run_batch(trace, sync_tasks)
    assert score.status == "failed"
    assert "could not be used, even after a repair request" in score.error
    assert score.details["failed_raw_answer"] == f"Still not JSON {EVIL}"

    html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert "The answer that could not be used" in html
    assert "Still not JSON &lt;script&gt;" in html
    assert "First answer, malformed" in html and "Sure! &lt;script&gt;" in html
    assert EVIL not in html


def test_the_results_page_and_batch_progress_total_the_judge_cost(alice_client, judge, sync_tasks):
    judge.default = Reply(json.dumps({"opinions": []}), input_tokens=1000, output_tokens=100)
    first = run_batch(agent_trace(), sync_tasks, "bias")
    run_batch(agent_trace(), sync_tasks, "bias")
    html = alice_client.get("/scorers/bias/results/").content.decode()
    assert '<strong class="cost">$0.0056</strong>' in html  # 2 × (1000 × 2 + 100 × 8) / 1e6
    progress = alice_client.get(f"/batches/{first.batch_id}/progress/").content.decode()
    assert '<span class="cost">$0.0028</span>' in progress


def test_code_scores_have_nothing_to_open(alice_client, sync_tasks):
    trace = agent_trace()
    run_batch(trace, sync_tasks, "completeness")
    html = alice_client.get(f"/traces/{trace.trace_id}/").content.decode()
    assert "score-details" not in html
    assert "Judge cost" not in alice_client.get("/scorers/completeness/results/").content.decode()
