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


def lc(cls, content):
    return {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "schema", "messages", cls],
        "kwargs": {"content": content},
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param("plain answer", "plain answer", id="a string is its own text"),
        pytest.param('{"answer": "from json text"}', "from json text", id="json text is decoded"),
        pytest.param('"quoted"', "quoted", id="a json string is decoded"),
        pytest.param(
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "a",
            id="a chat gives its last assistant message",
        ),
        pytest.param(
            [{"role": "assistant", "parts": [{"type": "text", "content": "genai"}]}],
            "genai",
            id="genai output messages give their text parts",
        ),
        pytest.param(
            {"choices": [{"message": {"role": "assistant", "content": "openai"}}]},
            "openai",
            id="an openai response gives its first choice",
        ),
        pytest.param(
            {"messages": [lc("HumanMessage", "q"), lc("AIMessage", "langchain")]},
            "langchain",
            id="langchain serialised messages give the ai message's content",
        ),
        pytest.param(
            {"generations": [[{"text": "generated", "message": lc("AIMessage", "generated")}]]},
            "generated",
            id="a langchain llm result gives its first generation",
        ),
        pytest.param(
            {"candidates": [{"content": {"role": "model", "parts": [{"text": "gemini"}]}}]},
            "gemini",
            id="a gemini response gives its first candidate",
        ),
        pytest.param(
            [
                {
                    "role": "assistant",
                    "content": {"format": 2, "parts": [{"type": "text", "text": "m"}]},
                }
            ],
            "m",
            id="a mastra stored message gives its text parts",
        ),
        pytest.param({"output": "dict output"}, "dict output", id="an answer-like key"),
        pytest.param(
            {"status": "shipped", "eta": "Friday", "order_id": 1042, "paid": True},
            "shipped\nFriday",
            id="other dicts give their strings, never keys, numbers or flags",
        ),
        pytest.param(
            {"order": {"items": [{"name": "Tent"}, {"name": "Stove"}]}},
            "Tent\nStove",
            id="nested dicts and lists give their strings",
        ),
        pytest.param(
            {"role": "admin", "name": "Jane Doe"},
            "admin\nJane Doe",
            id="a record with a role field but no content is no chat message",
        ),
        pytest.param({}, "", id="an empty dict has no text"),
        pytest.param([1042, 77], "", id="a list of numbers has no text"),
        pytest.param(42, "42", id="a number on its own is text"),
        pytest.param(
            [{"role": "user", "content": "q"}, {"role": "tool", "content": "{}"}],
            "",
            id="a chat without an assistant message has no answer",
        ),
        pytest.param(None, "", id="nothing"),
    ],
)
def test_text_of_finds_the_text_a_person_reads_in_common_shapes(value, text):
    assert text_of(value) == text


def test_text_of_finds_the_users_question_in_messages():
    messages = [{"role": "system", "content": "Be nice"}, {"role": "user", "content": "Hi?"}]
    assert text_of(messages, role="user") == "Hi?"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param([{"role": "system", "content": "Be nice"}], id="a system prompt only"),
        pytest.param(
            {"messages": [lc("SystemMessage", "Be nice"), lc("AIMessage", "Hello")]},
            id="langchain messages without a human one",
        ),
    ],
)
def test_text_of_finds_no_question_without_a_user_message(value):
    assert text_of(value, role="user") == ""


def test_text_of_reads_langchain_message_pairs_and_nested_lists_as_questions():
    assert text_of({"messages": [["user", "tuple question"]]}, role="user") == "tuple question"
    assert text_of({"messages": [[lc("HumanMessage", "nested")]]}, role="user") == "nested"
