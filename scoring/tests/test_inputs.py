"""What a scorer sees of a trace: the scored span, plain text, steps and metadata."""

import pytest

from scoring.inputs import build_scoring_input, text_of
from scoring.scorers import ScorerError
from tests.factories import agent_trace, new_trace_id

pytestmark = pytest.mark.django_db


def test_a_trace_becomes_question_answer_steps_and_metadata():
    trace = agent_trace(metadata={"expected_tools": ["lookup_order"]})
    data = build_scoring_input(trace.trace_id)
    assert data.span_id == trace.root_span_id
    assert data.question == "Where is my order 1042?"
    assert data.output_text == "Your order 1042 shipped yesterday and arrives Friday."
    assert data.system_prompt == "You are a helpful support agent."
    assert [c.name for c in data.tool_calls] == ["lookup_order"]
    assert data.tool_calls[0].arguments == {"order_id": "1042"}
    assert [s.output_text for s in data.llm_steps] == [
        "Let me look up that order.",
        "Your order 1042 shipped yesterday and arrives Friday.",
    ]
    assert data.metadata == {"expected_tools": ["lookup_order"]}
    assert data.duration_ms == 2400


def test_an_unknown_trace_cannot_be_scored():
    with pytest.raises(ScorerError, match="does not exist"):
        build_scoring_input(new_trace_id())


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain answer", "plain answer"),
        ('{"answer": "from json text"}', "from json text"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "a"),
        ([{"role": "assistant", "parts": [{"type": "text", "content": "genai"}]}], "genai"),
        ({"choices": [{"message": {"role": "assistant", "content": "openai"}}]}, "openai"),
        ({"output": "dict output"}, "dict output"),
        ({"status": "shipped"}, '{"status": "shipped"}'),
        (None, ""),
    ],
)
def test_text_of_finds_the_answer_in_common_shapes(value, text):
    assert text_of(value) == text


def test_text_of_finds_the_users_question_in_messages():
    messages = [{"role": "system", "content": "Be nice"}, {"role": "user", "content": "Hi?"}]
    assert text_of(messages, role="user") == "Hi?"
