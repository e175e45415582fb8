"""LLM judges against a real OpenAI-compatible HTTP server on 127.0.0.1 (nothing patched).

Each judge's score is computed in code from the verdicts the server is scripted
to give, so these tests know the score to expect.
"""

import json
import socket
import time

import pytest

from scoring.inputs import build_scoring_input, scoring_input_from_spans
from scoring.scorers import ScorerError, registry
from scoring.scorers.base import DEADLINE, ScorerFailure, SpanSummary
from scoring.scorers.judging import NO_STRUCTURED_OUTPUT, cost_usd, price_of
from scoring.tasks import run_with_timeout
from tests.factories import agent_trace
from tests.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.django_db


def answer(obj, **kwargs) -> Reply:
    """A scripted judge answer: ``obj`` as JSON text."""
    return Reply(json.dumps(obj), **kwargs)


def verdicts(*pairs):
    return {
        "verdicts": [{"item": item, "verdict": v, "reason": f"{v} because"} for item, v in pairs]
    }


@pytest.fixture
def judge(settings):
    """A running judge server, configured as the judge endpoint."""
    NO_STRUCTURED_OUTPUT.clear()
    with FakeOpenAI(default=Reply("nothing scripted")) as server:
        settings.TRACESCORE_JUDGE_BASE_URL = server.base_url
        settings.TRACESCORE_JUDGE_MODEL = "judge-test-model"
        settings.TRACESCORE_JUDGE_API_KEY = "sk-test"
        settings.TRACESCORE_JUDGE_TIMEOUT = 2
        settings.TRACESCORE_JUDGE_MAX_RETRIES = 2
        settings.TRACESCORE_JUDGE_PRICES = {"judge-test-model": {"input": 2.0, "output": 8.0}}
        yield server
    NO_STRUCTURED_OUTPUT.clear()


@pytest.fixture
def data():
    return build_scoring_input(agent_trace().trace_id)


def user_message(request) -> str:
    return request.body["messages"][-1]["content"]


# --- each judge's score from known verdicts -------------------------------------


def test_answer_relevancy_counts_relevant_statements_and_names_the_irrelevant(judge, data):
    statements = ["Order 1042 shipped yesterday.", "It arrives Friday.", "Cats are nice."]
    judge.replies = [
        answer({"statements": statements}, input_tokens=300, output_tokens=40),
        answer(
            verdicts((statements[0], "yes"), (statements[1], "unsure"), (statements[2], "no")),
            input_tokens=500,
            output_tokens=90,
        ),
    ]
    result = registry.get("answer-relevancy").score(data)
    assert result.score == round((1 + 0.3) / 3, 2)
    assert "1 of 3 statements answer the question" in result.reason
    assert "irrelevant: “Cats are nice.”" in result.reason
    assert "partly relevant: “It arrives Friday.”" in result.reason
    steps = result.details["steps"]
    assert [s["name"] for s in steps] == ["extract", "verdicts"]
    assert "Your order 1042 shipped yesterday and arrives Friday." in steps[0]["prompt"]
    assert "Where is my order 1042?" in steps[1]["prompt"]
    assert "3. Cats are nice." in steps[1]["prompt"]
    assert steps[1]["parsed"]["verdicts"][2]["verdict"] == "no"
    assert steps[0]["raw_answer"] == json.dumps({"statements": statements})
    assert result.details["model"] == "judge-test-model"
    assert result.details["usage"] == {
        "prompt_tokens": 800,
        "completion_tokens": 130,
        "total_tokens": 930,
    }
    assert result.details["latency_ms"] > 0
    sent = judge.requests[0].body
    assert sent["model"] == "judge-test-model"
    assert sent["response_format"]["type"] == "json_schema"
    schema = sent["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["statements"] and schema["additionalProperties"] is False


def test_faithfulness_checks_claims_against_tool_output_as_text(judge, data):
    claims = ["Order 1042 shipped", "It shipped yesterday", "It arrives Monday", "It is insured"]
    judge.replies = [
        answer({"claims": claims}),
        answer(verdicts(*zip(claims, ["yes", "yes", "no", "unsure"], strict=True))),
    ]
    result = registry.get("faithfulness").score(data)
    assert result.score == 0.5
    assert result.reason == (
        "2 of 4 claims are supported by the context; contradicted: “It arrives Monday”; "
        "not in the context: “It is insured”."
    )
    prompt = result.details["steps"][1]["prompt"]
    assert "[lookup_order] status: shipped\neta: Friday" in prompt
    assert '{"status"' not in prompt


def test_hallucination_is_the_share_of_unsupported_claims(judge, data):
    claims = ["Order 1042 shipped", "It arrives Friday", "It ships by drone"]
    judge.replies = [
        answer({"claims": claims}),
        answer(verdicts(*zip(claims, ["no", "no", "yes"], strict=True))),
    ]
    result = registry.get("hallucination").score(data)
    assert result.score == 0.33
    assert result.reason == "1 of 3 claims are not supported by the context: “It ships by drone”."


def test_toxicity_is_the_share_of_toxic_statements(judge, data):
    statements = ["Your order shipped.", "Only an idiot would ask twice."]
    judge.replies = [
        answer({"statements": statements}),
        answer(verdicts((statements[0], "No"), (statements[1], "YES"))),
    ]
    result = registry.get("toxicity").score(data)
    assert result.score == 0.5
    assert "“Only an idiot would ask twice.”" in result.reason


def test_bias_without_opinions_is_zero_after_one_call(judge, data):
    judge.replies = [answer({"opinions": []})]
    result = registry.get("bias").score(data)
    assert (result.score, len(judge.requests)) == (0.0, 1)
    assert "no opinions" in result.reason


def test_bias_is_the_share_of_biased_opinions(judge, data):
    opinions = ["City people are rude.", "Friday delivery is convenient."]
    judge.replies = [
        answer({"opinions": opinions}),
        answer(verdicts((opinions[0], "yes"), (opinions[1], "no"))),
    ]
    result = registry.get("bias").score(data)
    assert result.score == 0.5
    assert "“City people are rude.”" in result.reason


def test_prompt_alignment_weighs_intent_requirements_completeness_and_tone(judge, data):
    judge.replies = [
        answer(
            {
                "requirements": [
                    {"requirement": "Be helpful", "source": "system"},
                    {"requirement": "Give the order's status", "source": "user"},
                ]
            }
        ),
        answer(
            {
                "intent": {"primary_intent": "order status", "score": 1.0, "reason": "yes"},
                "requirements": [
                    {"requirement": "Be helpful", "fulfilled": False, "reason": "curt"},
                    {"requirement": "Give the order's status", "fulfilled": True, "reason": "ok"},
                ],
                "completeness": {"score": 0.5, "missing": ["tracking link"], "reason": "short"},
                "appropriateness": {"score": 1.0, "format_ok": True, "tone_ok": True, "reason": ""},
            }
        ),
    ]
    result = registry.get("prompt-alignment").score(data)
    assert result.score == round(0.4 * 1.0 + 0.3 * 0.5 + 0.2 * 0.5 + 0.1 * 1.0, 2)
    assert "1 of 2 requirements met" in result.reason
    assert "not met: “Be helpful”" in result.reason
    assert "missing: “tracking link”" in result.reason
    assert "You are a helpful support agent." in result.details["steps"][0]["prompt"]


def test_answer_similarity_compares_units_with_the_expected_output(judge):
    data = build_scoring_input(
        agent_trace(metadata={"expected_output": "Order 1042 shipped. It arrives Friday."}).trace_id
    )
    judge.replies = [
        answer(
            {
                "output_units": ["order 1042 shipped", "arrives Friday", "thanks"],
                "expected_units": ["Order 1042 shipped", "It arrives Friday"],
            }
        ),
        answer(
            {
                "matches": [
                    {
                        "expected_unit": "Order 1042 shipped",
                        "output_unit": "order 1042 shipped",
                        "match": "exact",
                        "reason": "same",
                    },
                    {
                        "expected_unit": "It arrives Friday",
                        "output_unit": None,
                        "match": "missing",
                        "reason": "absent",
                    },
                ],
                "extra_in_output": ["thanks"],
                "contradictions": [],
            }
        ),
    ]
    result = registry.get("answer-similarity").score(data)
    assert result.score == round((1.2 - 0.15) / 2.4 - 0.05, 2)
    assert "missing: “It arrives Friday”" in result.reason
    assert "Order 1042 shipped. It arrives Friday." in result.details["steps"][0]["prompt"]


def test_answer_similarity_needs_an_expected_output_and_calls_nothing_without_one(judge, data):
    with pytest.raises(ScorerError, match="no expected output"):
        registry.get("answer-similarity").score(data)
    assert judge.requests == []


def test_context_relevance_weighs_relevance_less_unused_and_missing_context(judge, data):
    judge.replies = [
        answer(
            {
                "evaluations": [{"index": 1, "relevance": "high", "used": True, "reason": "r"}],
                "missing_context": ["the tracking number"],
            }
        )
    ]
    result = registry.get("context-relevance").score(data)
    assert result.score == 0.85
    assert "missing: “the tracking number”" in result.reason


def three_tool_trace(metadata=None):
    spans = [
        SpanSummary(
            "a" * 16,
            None,
            "agent",
            "agent_run",
            "ok",
            input="Where is order 7?",
            output="Order 7 arrives Friday.",
            attributes={"metadata": metadata or {}},
        ),
        *(
            SpanSummary(f"{i}" * 16, "a" * 16, name, "tool_call", "ok", output=output)
            for i, (name, output) in enumerate(
                [("weather", "Sunny"), ("orders", {"id": 7, "eta": "Friday"}), ("faq", "Returns")],
                start=1,
            )
        ),
    ]
    return scoring_input_from_spans("b" * 32, spans)


def test_context_precision_is_the_mean_average_precision_in_retrieval_order(judge):
    data = three_tool_trace()
    judge.replies = [
        answer(
            {
                "verdicts": [
                    {"index": 1, "verdict": "no", "reason": "weather"},
                    {"index": 2, "verdict": "yes", "reason": "the order"},
                    {"index": 3, "verdict": "yes", "reason": "returns"},
                ]
            }
        )
    ]
    result = registry.get("context-precision").score(data)
    assert result.score == round((1 / 2 + 2 / 3) / 2, 2)
    assert "not useful: “[weather] Sunny”" in result.reason
    assert "2. [orders] id: 7\neta: Friday" in result.details["steps"][0]["prompt"]


def test_noise_sensitivity_takes_the_lower_score_and_penalises_major_issues(judge):
    data = three_tool_trace({"baseline_response": "Order 7 arrives Friday.", "noise_type": "typos"})
    impacts = ["none", "none", "severe", "minimal", "none"]
    judge.replies = [
        answer(
            {
                "dimensions": [
                    {"dimension": f"d{i}", "impact": impact, "changes": "", "reason": ""}
                    for i, impact in enumerate(impacts)
                ],
                "major_issues": ["dropped the date"],
                "robustness_score": 1.0,
            }
        )
    ]
    result = registry.get("noise-sensitivity").score(data)
    computed = (1 + 1 + 0.1 + 0.85 + 1) / 5  # 0.79, more than 0.2 below the judge's 1.0
    assert result.score == round(computed - 0.1, 2)
    assert "d2 (severe)" in result.reason and "“dropped the date”" in result.reason


def test_llm_tool_call_accuracy_judges_each_call_and_names_missing_tools(judge, data):
    judge.replies = [
        answer(
            {
                "evaluations": [{"tool": "lookup_order", "appropriate": True, "reason": "right"}],
                "missing_tools": ["track_parcel"],
            }
        )
    ]
    result = registry.get("llm-tool-call-accuracy").score(data)
    assert result.score == 1.0
    assert "1 of 1 tool calls were appropriate" in result.reason
    assert "“track_parcel”" in result.reason
    assert "1. lookup_order(order_id: 1042)" in result.details["steps"][0]["prompt"]


# --- structured output, malformed answers and repair -------------------------------


def test_a_malformed_answer_is_repaired_once_and_both_answers_are_kept(judge, data):
    judge.replies = [
        Reply("I think it is pretty good!"),
        answer({"statements": ["Order shipped."]}),
        answer(verdicts(("Order shipped.", "yes"))),
    ]
    result = registry.get("answer-relevancy").score(data)
    assert result.score == 1.0
    step = result.details["steps"][0]
    assert step["malformed_answer"] == "I think it is pretty good!"
    assert "not JSON" in step["malformed_error"]
    assert step["calls"] == 2
    repair = judge.requests[1].body["messages"]
    assert repair[-2] == {"role": "assistant", "content": "I think it is pretty good!"}
    assert "could not be used" in repair[-1]["content"]


def test_too_few_verdicts_are_repaired_like_a_malformed_answer(judge, data):
    judge.replies = [
        answer({"statements": ["A.", "B."]}),
        answer(verdicts(("A.", "yes"))),
        answer(verdicts(("A.", "yes"), ("B.", "no"))),
    ]
    result = registry.get("answer-relevancy").score(data)
    assert result.score == 0.5
    assert "1 verdicts for 2 statements" in result.details["steps"][1]["malformed_error"]


def test_an_answer_still_malformed_after_repair_fails_with_the_raw_answer(judge, data):
    judge.replies = [
        answer({"statements": ["A."]}),
        answer({"verdicts": [{"item": "A.", "verdict": "maybe", "reason": ""}]}),
        Reply('{"verdicts": "no idea"}'),
    ]
    with pytest.raises(ScorerFailure, match="could not be used, even after a repair") as failure:
        registry.get("answer-relevancy").score(data)
    details = failure.value.details
    assert details["failed_raw_answer"] == '{"verdicts": "no idea"}'
    assert [s["name"] for s in details["steps"]] == ["extract", "verdicts"]
    assert details["steps"][1]["parsed"] is None
    assert details["usage"]["prompt_tokens"] == 3 * 25


def test_an_endpoint_without_structured_output_is_asked_in_plain_json(judge, data):
    judge.replies = [
        Reply(status=400),
        Reply('```json\n{"statements": ["A."]}\n```'),
        answer(verdicts(("A.", "yes"))),
    ]
    result = registry.get("answer-relevancy").score(data)
    assert result.score == 1.0
    assert "response_format" in judge.requests[0].body
    assert all("response_format" not in r.body for r in judge.requests[1:])
    assert result.details["structured_output"] is False
    assert [s["structured_output"] for s in result.details["steps"]] == [False, False]


def test_a_request_refused_with_and_without_a_schema_fails_and_keeps_structured_output(judge, data):
    judge.replies = [Reply(status=400), Reply(status=400)]
    with pytest.raises(ScorerError, match="answered HTTP 400"):
        registry.get("answer-relevancy").score(data)
    assert len(judge.requests) == 2
    assert judge.base_url not in NO_STRUCTURED_OUTPUT


# --- cost ----------------------------------------------------------------------------


def test_cost_is_tokens_times_the_model_price_per_step_and_in_total(judge, data):
    judge.replies = [
        answer({"statements": ["A."]}, input_tokens=1000, output_tokens=100),
        answer(verdicts(("A.", "yes")), input_tokens=2000, output_tokens=50),
    ]
    result = registry.get("answer-relevancy").score(data)
    first, second = (s["cost_usd"] for s in result.details["steps"])
    assert first == pytest.approx((1000 * 2.0 + 100 * 8.0) / 1e6)
    assert second == pytest.approx((2000 * 2.0 + 50 * 8.0) / 1e6)
    assert result.details["cost_usd"] == pytest.approx(first + second)


def test_a_model_without_a_price_has_no_cost_rather_than_a_guess(judge, data, settings):
    settings.TRACESCORE_JUDGE_PRICES = {}
    judge.replies = [answer({"opinions": []})]
    result = registry.get("bias").score(data)
    assert result.details["cost_usd"] is None
    assert result.details["usage"]["prompt_tokens"] == 25


def test_dated_and_prefixed_model_names_take_their_listed_price(settings):
    settings.TRACESCORE_JUDGE_PRICES = {
        "gpt-4o": {"input": 2.5, "output": 10.0},
        "gpt-4o-mini": {"input": 0.15, "output": 0.6},
    }
    assert price_of("gpt-4o-mini-2024-07-18") == {"input": 0.15, "output": 0.6}
    assert price_of("openai/gpt-4o") == {"input": 2.5, "output": 10.0}
    assert price_of("llama3") is None
    assert cost_usd("gpt-4o", 1_000_000, 1_000_000) == 12.5
    assert cost_usd("gpt-4o", None, 10) is None


def test_prices_can_be_overridden_by_environment_json():
    import subprocess
    import sys

    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='tracescore.settings'; "
        "from django.conf import settings; p = settings.TRACESCORE_JUDGE_PRICES; "
        "print(p['my-model'], p['gpt-4o-mini'])"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "true",
        "TRACESCORE_JUDGE_PRICES": '{"my-model": {"input": 1, "output": 3}}',
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "{'input': 1.0, 'output': 3.0} {'input': 0.15, 'output': 0.6}"
    env["TRACESCORE_JUDGE_PRICES"] = '{"my-model": 3}'
    bad = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "TRACESCORE_JUDGE_PRICES must be a JSON object" in bad.stderr


# --- time, retries, failures ---------------------------------------------------------


def test_429_is_retried_then_succeeds(judge, data):
    judge.replies = [Reply(status=429), answer({"opinions": []})]
    result = registry.get("bias").score(data)
    assert result.score == 0.0
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


def test_a_step_that_outlives_the_deadline_fails_and_keeps_the_steps_before_it(
    judge, data, settings
):
    settings.TRACESCORE_JUDGE_TIMEOUT = 30
    judge.replies = [answer({"statements": ["A."]}), Reply(delay=3)]
    token = DEADLINE.set(time.monotonic() + 0.8)
    started = time.monotonic()
    try:
        with pytest.raises(ScorerFailure, match=r"did not answer within 0\.[0-9]+ s") as failure:
            registry.get("answer-relevancy").score(data)
    finally:
        DEADLINE.reset(token)
    assert time.monotonic() - started < 1.5
    steps = failure.value.details["steps"]
    assert steps[0]["parsed"] == {"statements": ["A."]}
    assert steps[1]["name"] == "verdicts" and steps[1]["raw_answer"] == ""


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


def test_context_judges_fail_without_tool_output_before_calling_the_judge(judge):
    root = SpanSummary("a" * 16, None, "agent", "agent_run", "ok", input="Hi", output="Hello")
    data = scoring_input_from_spans("b" * 32, [root])
    for scorer_id in ("faithfulness", "hallucination", "context-relevance", "context-precision"):
        with pytest.raises(ScorerError, match="no tool or retrieval output"):
            registry.get(scorer_id).score(data)
    assert judge.requests == []


def test_prompt_alignment_needs_a_system_prompt_or_a_question(judge):
    root = SpanSummary("a" * 16, None, "agent", "agent_run", "ok", input=None, output="Hello")
    with pytest.raises(ScorerError, match="no system prompt or question"):
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
    judge.replies = [answer({"score": 0.9, "reason": "Courteous."})]
    politeness = registry.get("politeness")
    assert politeness.kind == "llm"
    result = politeness.score(data)
    assert (result.score, result.reason) == (0.9, "Courteous.")
    prompt = result.details["steps"][0]["prompt"]
    assert "Answer: Your order 1042 shipped yesterday" in prompt
    assert "Rubric:\n1 = very polite, 0 = rude" in prompt


def test_a_verdict_outside_the_range_is_refused_after_its_repair(judge, data, settings):
    settings.TRACESCORE_CUSTOM_JUDGES = {"p": {"prompt": "{answer}"}}
    judge.replies = [answer({"score": 7, "reason": "Great"}), answer({"score": 7, "reason": "!"})]
    with pytest.raises(ScorerFailure, match="outside 0..1"):
        registry.get("p").score(data)
