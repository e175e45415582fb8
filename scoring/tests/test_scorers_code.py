"""Built-in code scorers on realistic traces: scores and reasons a person reads."""

from datetime import timedelta

import pytest

from scoring.inputs import build_scoring_input, scoring_input_from_spans
from scoring.scorers import ScorerError, registry
from scoring.scorers.base import SpanSummary
from tests.factories import agent_trace

pytestmark = pytest.mark.django_db


def score(scorer_id, trace):
    return registry.get(scorer_id).score(build_scoring_input(trace.trace_id))


def test_completeness_names_the_missing_terms():
    trace = agent_trace(
        question="Can I get a refund for order 1042 and the shipping fee?",
        answer="Order 1042 is refunded in full.",
    )
    result = score("completeness", trace)
    # Terms: refund, order, shipping, fee (1042 is a number); "refunded" counts for "refund".
    assert result.score == pytest.approx(2 / 4)
    assert result.reason == (
        "The answer addresses 2 of 4 key terms of the question; missing: shipping, fee."
    )


def test_keyword_coverage_uses_keywords_from_metadata_when_given():
    trace = agent_trace(
        answer="We refunded the order.",
        metadata={"keywords": ["refund", "order", "apology"]},
    )
    result = score("keyword-coverage", trace)
    assert result.score == pytest.approx(1 / 3)
    assert result.reason == (
        "1 of 3 keywords from the trace's metadata appear in the answer; missing: refund, apology."
    )


def test_content_similarity_prefers_the_expected_output():
    expected = "Your order 1042 shipped yesterday and arrives Friday."
    same = agent_trace(answer=expected, metadata={"expected_output": expected})
    other = agent_trace(answer="Bananas are yellow.", metadata={"expected_output": expected})
    assert score("content-similarity", same).score == 1.0
    assert "similar to the expected output" in score("content-similarity", same).reason
    assert score("content-similarity", other).score < 0.3


def test_textual_difference_counts_edits():
    trace = agent_trace(
        answer="Order 1042 ships Friday.", metadata={"expected_output": "Order 1042 ships Monday."}
    )
    result = score("textual-difference", trace)
    assert 0.7 < result.score < 1
    assert result.reason.startswith(
        "3 character edits separate the answer from the expected output"
    )


def test_tone_consistency_notices_a_shift():
    calm = agent_trace(question="Where is my order?", answer="It arrives Friday.")
    angry = agent_trace(
        question="Thanks, I love this shop!", answer="This is terrible, awful and stupid."
    )
    assert score("tone-consistency", calm).score == 1.0
    shifted = score("tone-consistency", angry)
    assert shifted.score < 0.5
    assert "a shift in tone" in shifted.reason


def test_json_validity_of_text_and_structured_output():
    assert score("json-validity", agent_trace(answer='{"ok": true}')).score == 1.0
    bad = score("json-validity", agent_trace(answer="{'ok': True}"))
    assert bad.score == 0.0
    assert bad.reason.startswith("The output is not valid JSON")


def test_tool_call_accuracy_against_expected_tools():
    trace = agent_trace(metadata={"expected_tools": ["lookup_order", "refund_payment"]})
    result = score("tool-call-accuracy", trace)
    assert result.score == 0.5
    assert result.reason == (
        "Called 1 of 2 expected tools successfully; not called: refund_payment."
    )


def test_tool_call_accuracy_without_expectations_counts_failed_calls():
    trace = agent_trace(tool_error="Order service timed out")
    result = score("tool-call-accuracy", trace)
    assert result.score == 0.0
    assert "failed: lookup_order (Order service timed out)" in result.reason


def test_latency_against_the_budget(settings):
    settings.TRACESCORE_LATENCY_BUDGET_MS = 1200
    result = score("latency", agent_trace())
    assert result.score == pytest.approx(0.5)
    assert result.reason == "Took 2.40 s, over the budget of 1.20 s."


def test_latency_refuses_a_span_that_ends_before_it_starts():
    from django.utils import timezone

    now = timezone.now()
    backwards = SpanSummary(
        "a" * 16,
        None,
        "agent",
        "agent_run",
        "ok",
        started_at=now,
        ended_at=now - timedelta(seconds=2),
        duration_ms=-2000.0,
    )
    data = scoring_input_from_spans("b" * 32, [backwards])
    assert data.duration_ms == -2000.0  # as stored before ingest rejected such spans
    with pytest.raises(ScorerError, match="ends before it starts"):
        registry.get("latency").score(data)


def test_error_free_names_the_failing_span():
    assert score("error-free", agent_trace()).reason == "None of the 4 spans failed."
    failed = score("error-free", agent_trace(tool_error="Order service timed out"))
    assert failed.score == 0.0
    assert failed.reason == "1 of 4 spans failed: lookup_order (Order service timed out)."


@pytest.mark.parametrize(
    "scorer_id",
    [
        "completeness",
        "keyword-coverage",
        "content-similarity",
        "textual-difference",
        "json-validity",
    ],
)
def test_an_empty_output_is_a_clear_failure_not_a_zero(scorer_id):
    with pytest.raises(ScorerError, match="has no output"):
        score(scorer_id, agent_trace(answer=""))


def test_a_list_of_ids_is_no_answer_text_but_is_a_json_document():
    root = SpanSummary(
        "a" * 16, None, "agent", "agent_run", "ok", input="List the order ids", output=[1042, 77]
    )
    data = scoring_input_from_spans("b" * 32, [root])
    assert data.output_text == ""
    assert registry.get("json-validity").score(data).score == 1.0
    with pytest.raises(ScorerError, match="has no output text to score"):
        registry.get("keyword-coverage").score(data)


def test_a_trace_without_its_root_scores_the_earliest_span_and_says_so():
    from django.utils import timezone

    start = timezone.now()
    child = SpanSummary(
        "c" * 16,
        "d" * 16,
        "lookup_order",
        "tool_call",
        "ok",
        started_at=start,
        ended_at=start + timedelta(seconds=1),
        duration_ms=1000,
        input={"order_id": "1042"},
        output={"status": "shipped"},
    )
    data = scoring_input_from_spans("e" * 32, [child])
    assert data.span_id == "c" * 16
    assert "root span has not arrived yet" in data.notes[0]
    assert registry.get("error-free").score(data).score == 1.0


def test_every_builtin_scores_the_demo_traces_and_refuses_only_for_a_true_reason():
    from observability.demo import store_demo_traces
    from observability.models import Trace
    from scoring.scorers.code import key_terms

    store_demo_traces(30, seed=4)
    code_scorers = [s for s in registry.all() if s.kind == "code"]
    assert len(code_scorers) == 9
    scored, refused = 0, []
    for trace in Trace.objects.all():
        data = build_scoring_input(trace.trace_id)
        for scorer in code_scorers:
            try:
                result = scorer.score(data)
            except ScorerError as error:
                refused.append((scorer.id, data, str(error)))
                continue
            scored += 1
            assert 0 <= result.score <= 1, scorer.id
            assert result.reason, scorer.id
    # Every agent run has a question and an answer, so nothing about it is refused.
    assert [(s, d.span_name, e) for s, d, e in refused if d.span_type == "agent_run"] == []
    # Workflow runs are refused only when their root really lacks what is named.
    for scorer_id, data, error in refused:
        if "has no output to" in error:
            assert data.output is None, (scorer_id, error)
        elif "has no output text to score" in error:
            assert data.output is not None and data.output_text == "", (scorer_id, error)
        elif "no key terms" in error or "no keywords" in error:
            assert data.output_text and not key_terms(data.question), (scorer_id, error)
        else:
            raise AssertionError(f"{scorer_id} refused for an unexpected reason: {error}")
    assert scored > 0
    assert len(refused) < 30 * 9 // 5, "most demo traces should be scored, not refused"
