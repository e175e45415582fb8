"""Messages and system instructions read from OpenInference and GenAI attributes.

The attribute values are those the OpenInference OpenAI instrumentation
(``openinference-instrumentation-openai`` 0.1.66) emitted for real calls, and
the GenAI ``gen_ai.system_instructions`` shape of the semantic conventions.
"""

import json

from observability.conventions import flattened_messages, map_attributes, system_instructions

SYSTEM_PROMPT = "You are a terse support agent for Acme."
QUESTION = "Where is my order 1042?"

# A chat completion with a developer message in content parts and a tool call answer.
OPENINFERENCE_TOOL_CALL = {
    "openinference.span.kind": "LLM",
    "llm.model_name": "gpt-4o-mini",
    "llm.input_messages.0.message.role": "developer",
    "llm.input_messages.0.message.contents.0.message_content.type": "text",
    "llm.input_messages.0.message.contents.0.message_content.text": SYSTEM_PROMPT,
    "llm.input_messages.1.message.role": "user",
    "llm.input_messages.1.message.contents.0.message_content.type": "text",
    "llm.input_messages.1.message.contents.0.message_content.text": QUESTION,
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_0007",
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup_order",
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": (
        '{"order_id": "1042"}'
    ),
    "llm.token_count.prompt": 25,
    "llm.token_count.completion": 9,
}

# The next turn: the tool's answer goes back to the model, which answers in text.
OPENINFERENCE_TOOL_RESULT = {
    "openinference.span.kind": "LLM",
    "llm.input_messages.0.message.role": "system",
    "llm.input_messages.0.message.content": SYSTEM_PROMPT,
    "llm.input_messages.1.message.role": "user",
    "llm.input_messages.1.message.content": QUESTION,
    "llm.input_messages.2.message.role": "assistant",
    "llm.input_messages.2.message.tool_calls.0.tool_call.id": "call_0007",
    "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "lookup_order",
    "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": (
        '{"order_id": "1042"}'
    ),
    "llm.input_messages.3.message.role": "tool",
    "llm.input_messages.3.message.tool_call_id": "call_0007",
    "llm.input_messages.3.message.content": '{"status": "shipped"}',
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.content": "It shipped.",
}

# A Responses API call: the answer comes as content parts.
OPENINFERENCE_RESPONSES_OUTPUT = {
    "openinference.span.kind": "LLM",
    "llm.output_messages.0.message.role": "assistant",
    "llm.output_messages.0.message.contents.0.message_content.type": "text",
    "llm.output_messages.0.message.contents.0.message_content.text": "Shipped via Responses.",
}

GENAI_CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 25,
    "gen_ai.usage.output_tokens": 9,
    "gen_ai.system_instructions": json.dumps([{"type": "text", "content": SYSTEM_PROMPT}]),
    "gen_ai.input.messages": json.dumps(
        [{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]
    ),
    "gen_ai.output.messages": json.dumps(
        [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "It shipped yesterday."}],
                "finish_reason": "stop",
            }
        ]
    ),
}


def test_openinference_content_parts_and_tool_calls_are_rebuilt_into_messages():
    messages = flattened_messages(OPENINFERENCE_TOOL_CALL)
    assert messages["input"] == [
        {"role": "developer", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
    ]
    assert messages["output"] == [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_0007",
                    "function": {"name": "lookup_order", "arguments": '{"order_id": "1042"}'},
                }
            ],
        }
    ]


def test_openinference_tool_results_keep_their_call_id():
    messages = flattened_messages(OPENINFERENCE_TOOL_RESULT)["input"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[0]["content"] == SYSTEM_PROMPT
    assert messages[2]["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert messages[3] == {
        "role": "tool",
        "tool_call_id": "call_0007",
        "content": '{"status": "shipped"}',
    }


def test_without_input_and_output_values_the_rebuilt_messages_are_the_span_io():
    # Some instrumentations send only the flattened messages, no input.value / output.value.
    mapped = map_attributes(OPENINFERENCE_RESPONSES_OUTPUT)
    assert mapped.span_type == "llm_generation"
    assert mapped.input is None
    assert mapped.output == [
        {"role": "assistant", "content": [{"type": "text", "text": "Shipped via Responses."}]}
    ]


def test_genai_system_instructions_lead_the_input_messages():
    mapped = map_attributes(GENAI_CHAT)
    assert mapped.input == [
        {"role": "system", "parts": [{"type": "text", "content": SYSTEM_PROMPT}]},
        {"role": "user", "parts": [{"type": "text", "content": QUESTION}]},
    ]
    assert (mapped.model, mapped.input_tokens, mapped.output_tokens) == ("gpt-4o-mini", 25, 9)


def test_genai_system_instructions_alone_are_the_input():
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.system_instructions": SYSTEM_PROMPT}
    assert map_attributes(attributes).input == [
        {"role": "system", "parts": [{"type": "text", "content": SYSTEM_PROMPT}]}
    ]


def test_genai_messages_without_system_instructions_are_kept_as_sent():
    attributes = {**GENAI_CHAT}
    del attributes["gen_ai.system_instructions"]
    assert map_attributes(attributes).input == json.loads(GENAI_CHAT["gen_ai.input.messages"])


def test_system_instructions_accept_parts_text_or_nothing():
    parts = [{"type": "text", "content": SYSTEM_PROMPT}]
    assert system_instructions({"gen_ai.system_instructions": json.dumps(parts)}) == parts
    assert system_instructions({"gen_ai.system_instructions": [SYSTEM_PROMPT]}) == parts
    assert system_instructions({"gen_ai.system_instructions": "  "}) is None
    assert system_instructions({}) is None
