"""The system prompt, question and answer a scorer gets, for each convention's shapes.

Inputs and outputs are stored as the conventions give them (see
``observability/conventions.py``): OpenInference keeps the whole OpenAI request
and response JSON in ``input.value`` / ``output.value``; GenAI keeps message
lists and ``gen_ai.system_instructions``. The values below are copied from what
``openinference-instrumentation-openai`` sent for real calls.
"""

from datetime import UTC, datetime

import pytest

from observability.conventions import map_attributes
from scoring.inputs import scoring_input_from_spans, system_prompt_of, text_of
from scoring.scorers.base import SpanSummary

SYSTEM_PROMPT = "You are a terse support agent for Acme."
QUESTION = "Where is my order 1042?"
ANSWER = "It shipped yesterday."

CHAT_REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": QUESTION},
    ],
}
CHAT_REQUEST_WITH_PARTS = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "developer", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
    ],
}
RESPONSES_REQUEST = {"model": "gpt-4o-mini", "input": QUESTION, "instructions": SYSTEM_PROMPT}
RESPONSES_REQUEST_WITH_ITEMS = {
    "model": "gpt-4o-mini",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": QUESTION}]},
        {"type": "function_call", "call_id": "call_1", "name": "lookup_order", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "shipped"},
    ],
    "instructions": [{"role": "developer", "content": SYSTEM_PROMPT}],
}
RESPONSE = {
    "id": "resp_0004",
    "object": "response",
    "instructions": SYSTEM_PROMPT,
    "model": "gpt-4o-mini",
    "output": [
        {
            "id": "msg_0003",
            "content": [{"annotations": [], "text": ANSWER, "type": "output_text", "logprobs": []}],
            "role": "assistant",
            "status": "completed",
            "type": "message",
        }
    ],
    "status": "completed",
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "usage": {"input_tokens": 25, "output_tokens": 9, "total_tokens": 34},
}
FUNCTION_CALL = {
    "id": "fc_0002",
    "type": "function_call",
    "status": "completed",
    "call_id": "call_0001",
    "name": "lookup_order",
    "arguments": '{"order_id": "1042"}',
}
REASONING = {"id": "rs_0001", "type": "reasoning", "summary": []}


@pytest.mark.parametrize(
    "value",
    [
        CHAT_REQUEST,
        CHAT_REQUEST_WITH_PARTS,
        RESPONSES_REQUEST,
        RESPONSES_REQUEST_WITH_ITEMS,
        {"model": "gpt-4o-mini", "input": [{"role": "system", "content": SYSTEM_PROMPT}]},
        {"model": "claude", "system": [{"type": "text", "text": SYSTEM_PROMPT}], "messages": []},
        CHAT_REQUEST["messages"],
        [
            {"role": "system", "parts": [{"type": "text", "content": SYSTEM_PROMPT}]},
            {"role": "user", "parts": [{"type": "text", "content": QUESTION}]},
        ],
    ],
    ids=[
        "chat request",
        "chat request, developer message in parts",
        "responses instructions",
        "responses instructions as messages",
        "responses system message in input",
        "anthropic system blocks",
        "message list",
        "genai messages",
    ],
)
def test_the_system_prompt_is_found_in_every_request_shape(value):
    assert system_prompt_of(value) == SYSTEM_PROMPT


def test_the_system_prompt_comes_from_genai_system_instructions_when_the_input_lacks_it():
    attributes = {
        "gen_ai.system_instructions": f'[{{"type": "text", "content": "{SYSTEM_PROMPT}"}}]'
    }
    assert system_prompt_of(QUESTION, attributes) == SYSTEM_PROMPT


def test_the_system_prompt_comes_from_openinference_messages_when_the_input_lacks_it():
    attributes = {
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": SYSTEM_PROMPT,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": QUESTION,
    }
    assert system_prompt_of(QUESTION, attributes) == SYSTEM_PROMPT


def test_without_a_system_message_there_is_no_system_prompt():
    assert system_prompt_of({"model": "m", "input": QUESTION}, {"llm.model_name": "m"}) == ""
    assert system_prompt_of([{"role": "user", "content": QUESTION}]) == ""


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (RESPONSE, ANSWER),
        ({**RESPONSE, "output": [REASONING, *RESPONSE["output"]]}, ANSWER),
        ({**RESPONSE, "output": [FUNCTION_CALL]}, ""),
        (RESPONSE["output"], ANSWER),
        ([{"role": "assistant", "content": [{"type": "text", "text": ANSWER}]}], ANSWER),
        ({"output": RESPONSE["output"]}, ANSWER),
        ({"output": [{"type": "document", "id": 7}]}, '[{"type": "document", "id": 7}]'),
    ],
    ids=[
        "response",
        "response after reasoning",
        "response that only calls a tool",
        "output items",
        "openinference content parts",
        "output items in a dict",
        "typed items that are not a response",
    ],
)
def test_the_answer_is_the_output_text_of_a_response(value, text):
    assert text_of(value) == text


@pytest.mark.parametrize(
    "value",
    [CHAT_REQUEST, CHAT_REQUEST_WITH_PARTS, RESPONSES_REQUEST, RESPONSES_REQUEST_WITH_ITEMS],
    ids=["chat", "chat parts", "responses", "responses items"],
)
def test_the_question_is_the_users_message_of_a_request(value):
    assert text_of(value, role="user") == QUESTION


def test_a_genai_trace_gives_scorers_its_system_instructions_question_and_answer():
    at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    chat = map_attributes(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.system_instructions": f'[{{"type": "text", "content": "{SYSTEM_PROMPT}"}}]',
            "gen_ai.input.messages": (
                f'[{{"role": "user", "parts": [{{"type": "text", "content": "{QUESTION}"}}]}}]'
            ),
            "gen_ai.output.messages": (
                f'[{{"role": "assistant", "parts": [{{"type": "text", "content": "{ANSWER}"}}],'
                ' "finish_reason": "stop"}]'
            ),
        }
    )
    spans = [
        SpanSummary("a" * 16, None, "invoke_agent support", "agent_run", "ok", started_at=at),
        SpanSummary(
            "b" * 16,
            "a" * 16,
            "chat gpt-4o-mini",
            chat.span_type,
            "ok",
            started_at=at,
            input=chat.input,
            output=chat.output,
            model=chat.model,
        ),
    ]
    data = scoring_input_from_spans("c" * 32, spans)
    assert (data.question, data.system_prompt) == (QUESTION, SYSTEM_PROMPT)
    assert data.llm_steps[0].output_text == ANSWER
