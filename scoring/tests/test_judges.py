"""LLM judges against a real OpenAI-compatible HTTP server on 127.0.0.1 (nothing patched)."""

import socket
import time

import pytest

from scoring.inputs import build_scoring_input
from scoring.scorers import ScorerError, registry
from scoring.scorers.base import DEADLINE
from scoring.tasks import run_with_timeout
from tests.factories import agent_trace
from tests.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def judge(settings):
    """A running judge server, configured as the judge endpoint."""
    with FakeOpenAI(default=Reply('{"score": 1, "reason": "Fine."}')) as server:
        settings.TRACESCORE_JUDGE_BASE_URL = server.base_url
        settings.TRACESCORE_JUDGE_MODEL = "judge-test-model"
        settings.TRACESCORE_JUDGE_API_KEY = "sk-test"
        settings.TRACESCORE_JUDGE_TIMEOUT = 2
        settings.TRACESCORE_JUDGE_MAX_RETRIES = 2
        yield server


@pytest.fixture
def data():
    return build_scoring_input(agent_trace().trace_id)


def test_a_good_verdict_becomes_a_score_with_its_evidence(judge, data):
    verdict = '{"score": 0.8, "reason": "Answers the order question."}'
    judge.replies = [Reply(verdict, input_tokens=120, output_tokens=20)]
    result = registry.get("answer-relevancy").score(data)
    assert result.score == 0.8
    assert result.reason == "Answers the order question."
    assert "Where is my order 1042?" in result.details["prompt"]
    assert result.details["raw_answer"].startswith('{"score": 0.8')
    assert result.details["model"] == "judge-test-model"
    assert result.details["usage"] == {"prompt_tokens": 120, "completion_tokens": 20}
    assert result.details["latency_ms"] > 0
    sent = judge.requests[0].body
    assert sent["model"] == "judge-test-model"
    assert sent["messages"][0]["role"] == "system"


def test_faithfulness_shows_the_judge_what_the_tools_returned(judge, data):
    judge.replies = [Reply('```json\n{"score": 1, "reason": "Supported."}\n```')]
    result = registry.get("faithfulness").score(data)
    assert result.score == 1.0
    context = result.details["prompt"].split("Context returned by tools and retrieval:")[1]
    assert '[lookup_order] {"' in context
    assert '"status": "shipped"' in context


def test_a_malformed_verdict_is_a_clear_failure(judge, data):
    judge.replies = [Reply("I think it is pretty good!")]
    with pytest.raises(ScorerError, match="not the JSON verdict asked for: 'I think it is"):
        registry.get("toxicity").score(data)


def test_a_verdict_outside_the_range_is_refused(judge, data):
    judge.replies = [Reply('{"score": 7, "reason": "Great"}')]
    with pytest.raises(ScorerError, match="outside 0..1"):
        registry.get("bias").score(data)


def test_429_is_retried_then_succeeds(judge, data):
    judge.replies = [Reply(status=429), Reply('{"score": 0.1, "reason": "Rude."}')]
    result = registry.get("toxicity").score(data)
    assert result.score == 0.1
    assert len(judge.requests) == 2


def test_a_server_that_keeps_failing_ends_in_a_clear_failure(judge, data, settings):
    settings.TRACESCORE_JUDGE_MAX_RETRIES = 1
    judge.replies = [Reply(status=503), Reply(status=503)]
    with pytest.raises(ScorerError, match="answered HTTP 503"):
        registry.get("answer-relevancy").score(data)
    assert len(judge.requests) == 2


def test_a_judge_that_does_not_answer_in_time_fails_with_the_limit(judge, data, settings):
    settings.TRACESCORE_JUDGE_TIMEOUT = 0.3
    settings.TRACESCORE_JUDGE_MAX_RETRIES = 0
    judge.replies = [Reply(delay=2)]
    with pytest.raises(ScorerError, match="did not answer within 0.3 s"):
        registry.get("answer-relevancy").score(data)


def test_a_judge_call_ends_at_the_scorer_runs_deadline(judge, data, settings):
    settings.TRACESCORE_JUDGE_TIMEOUT = 30
    judge.replies = [Reply(delay=3)]
    token = DEADLINE.set(time.monotonic() + 0.4)
    started = time.monotonic()
    try:
        with pytest.raises(ScorerError, match=r"did not answer within 0\.[0-9]+ s"):
            registry.get("answer-relevancy").score(data)
    finally:
        DEADLINE.reset(token)
    assert time.monotonic() - started < 1.5


def test_no_retry_is_sent_once_the_scorer_is_out_of_time(judge, data):
    # The judge asks to be retried in 1 s; the scorer has 0.5 s in all.
    judge.replies = [Reply(status=503, retry_after_ms="1000") for _ in range(3)]
    with pytest.raises(ScorerError, match="answered HTTP 503"):
        run_with_timeout(registry.get("answer-relevancy"), data, 0.5)
    time.sleep(2)  # long enough for two retries, had they been sent
    assert len(judge.requests) == 1


def test_an_unreachable_judge_fails_with_where_it_looked(settings, data):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens
    settings.TRACESCORE_JUDGE_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.TRACESCORE_JUDGE_MODEL = "m"
    settings.TRACESCORE_JUDGE_MAX_RETRIES = 0
    with pytest.raises(ScorerError, match=f"Could not reach the judge at http://127.0.0.1:{port}"):
        registry.get("hallucination").score(data)


def test_without_a_judge_the_judges_are_unavailable_and_say_why(settings, data):
    settings.TRACESCORE_JUDGE_BASE_URL = ""
    judge = registry.get("faithfulness")
    assert judge.available is False
    assert "TRACESCORE_JUDGE_BASE_URL" in judge.unavailable_reason
    with pytest.raises(ScorerError, match="No LLM judge configured"):
        judge.score(data)


def test_prompt_alignment_needs_a_system_prompt(judge):
    from scoring.inputs import scoring_input_from_spans
    from scoring.scorers.base import SpanSummary

    root = SpanSummary("a" * 16, None, "agent", "agent_run", "ok", input="Hi", output="Hello")
    with pytest.raises(ScorerError, match="no system prompt"):
        registry.get("prompt-alignment").score(scoring_input_from_spans("b" * 32, [root]))


def test_a_judge_defined_in_settings_uses_its_template_and_rubric(judge, data, settings):
    settings.TRACESCORE_CUSTOM_JUDGES = {
        "politeness": {
            "name": "Politeness",
            "description": "Is the answer polite?",
            "prompt": "Question: {question}\nAnswer: {answer}\nIs it polite?",
            "rubric": "1 = very polite, 0 = rude",
        }
    }
    judge.replies = [Reply('{"score": 0.9, "reason": "Courteous."}')]
    politeness = registry.get("politeness")
    assert politeness.kind == "llm"
    result = politeness.score(data)
    assert result.score == 0.9
    assert "Answer: Your order 1042 shipped yesterday" in result.details["prompt"]
    assert result.details["prompt"].endswith("Rubric:\n1 = very polite, 0 = rude")
