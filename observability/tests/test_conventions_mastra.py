"""Mastra's span attributes, as its exporters really send them, mapped onto span fields.

The fixtures are one agent run (a tool call, then the answer) exported by
``@mastra/otel-exporter`` 1.4.0 and by ``@mastra/arize`` 1.3.8, and one workflow
run (two steps, the second calling an agent with an input processor) exported by
``@mastra/otel-exporter`` 1.4.0, all with ``@mastra/core`` 1.71.0;
``tests/node/mastra`` produces the agent's spans live.
"""

import json
from pathlib import Path

import pytest

from observability.conventions import (
    map_attributes,
    mastra_instructions,
    mastra_metadata,
    span_type_of,
)
from scoring.inputs import scoring_input_from_spans, text_of
from scoring.scorers.base import SpanSummary

FIXTURES = Path(__file__).parent / "fixtures"
EXPORTS = {
    "otel": "mastra_otel_exporter_spans.json",
    "arize": "mastra_arize_spans.json",
}
WORKFLOW = "mastra_workflow_spans.json"
INSTRUCTIONS = "You are a weather assistant. Use the get-weather tool."


def exported(exporter: str) -> list[dict]:
    return json.loads((FIXTURES / EXPORTS.get(exporter, exporter)).read_text())["spans"]


def mapped_by_type(exporter: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for span in exported(exporter):
        attributes = span["attributes"]
        mapped = map_attributes(attributes, is_root=span["parentSpanId"] is None)
        found.setdefault(attributes["mastra.span.type"], []).append(mapped)
    return found


def summaries(exporter: str) -> list[SpanSummary]:
    """The fixture's spans as the scoring input sees them, parents before children."""
    from datetime import UTC, datetime, timedelta

    start = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    result = []
    for index, span in enumerate(reversed(exported(exporter))):
        mapped = map_attributes(span["attributes"], is_root=span["parentSpanId"] is None)
        result.append(
            SpanSummary(
                span_id=span["spanId"],
                parent_span_id=span["parentSpanId"],
                name=span["name"],
                span_type=mapped.span_type,
                status="ok",
                error_message="",
                started_at=start + timedelta(milliseconds=index),
                ended_at=start + timedelta(seconds=1),
                duration_ms=1000 - index,
                input=mapped.input,
                output=mapped.output,
                attributes=span["attributes"],
                model=mapped.model,
                input_tokens=mapped.input_tokens,
                output_tokens=mapped.output_tokens,
            )
        )
    return result


@pytest.mark.parametrize("exporter", EXPORTS)
def test_the_agent_run_shows_the_question_and_the_answer(exporter):
    (root,) = mapped_by_type(exporter)["agent_run"]
    assert root.span_type == "agent_run"
    assert root.input == "What is the weather in Paris?"
    assert text_of(root.output) == "It is sunny, 21 C in Paris."


@pytest.mark.parametrize("exporter", EXPORTS)
def test_both_exporters_give_every_mastra_span_the_same_type(exporter):
    types = {
        mastra_type: {m.span_type for m in spans}
        for mastra_type, spans in mapped_by_type(exporter).items()
    }
    assert types == {
        "agent_run": {"agent_run"},
        "model_generation": {"llm_generation"},
        "model_inference": {"llm_generation"},
        "model_step": {"workflow_step"},
        "model_chunk": {"generic"},
        "tool_call": {"tool_call"},
    }


@pytest.mark.parametrize("exporter", EXPORTS)
def test_tokens_are_counted_once_per_model_call(exporter):
    spans = [m for group in mapped_by_type(exporter).values() for m in group]
    # Two calls of 25 input and 9 output tokens: the OTel exporter 1.4 puts each on
    # its model_inference span, @mastra/arize 1.3 the sum on model_generation.
    assert sum(m.input_tokens or 0 for m in spans) == 50
    assert sum(m.output_tokens or 0 for m in spans) == 18
    assert [
        m for m in spans if m.input_tokens is not None and m.span_type != "llm_generation"
    ] == []


def test_the_otel_exporters_model_calls_carry_model_tokens_and_output():
    calls = mapped_by_type("otel")["model_inference"]
    assert [(c.model, c.input_tokens, c.output_tokens) for c in calls] == [
        ("gpt-4o-mini", 25, 9),
        ("gpt-4o-mini", 25, 9),
    ]
    assert text_of(calls[1].output) == "It is sunny, 21 C in Paris."
    (generation,) = mapped_by_type("otel")["model_generation"]
    assert text_of(generation.input, role="user") == "What is the weather in Paris?"
    assert text_of(generation.output) == "It is sunny, 21 C in Paris."
    assert generation.input_tokens is None


@pytest.mark.parametrize("exporter", EXPORTS)
def test_model_steps_and_chunks_keep_mastras_input_and_output(exporter):
    steps = mapped_by_type(exporter)["model_step"]
    assert steps[0].input[0] == {"role": "system", "content": INSTRUCTIONS}
    assert steps[0].output["toolCalls"][0]["toolName"] == "weather"
    assert steps[1].output["text"] == "It is sunny, 21 C in Paris."
    chunks = [c.output for c in mapped_by_type(exporter)["model_chunk"] if c.output]
    assert {"text": "It is sunny, 21 C in Paris."} in chunks


@pytest.mark.parametrize("exporter", EXPORTS)
def test_the_tool_call_has_its_name_arguments_and_result(exporter):
    (call,) = mapped_by_type(exporter)["tool_call"]
    assert call.input == {"city": "Paris"}
    assert call.output == {"forecast": "Sunny, 21 C in Paris"}
    data = scoring_input_from_spans("t", summaries(exporter))
    assert [(c.name, c.arguments) for c in data.tool_calls] == [("weather", {"city": "Paris"})]


@pytest.mark.parametrize("exporter", EXPORTS)
def test_mastra_metadata_becomes_trace_metadata_with_decoded_lists_and_the_run_ids(exporter):
    root = next(s for s in exported(exporter) if s["parentSpanId"] is None)
    metadata = mastra_metadata(root["attributes"])
    assert metadata["expected_tools"] == ["weather"]
    assert metadata["userId"] == "user-7"
    assert metadata["resourceId"] == "user-7"
    assert metadata["threadId"] == "thread-1"
    assert len(metadata["runId"]) == 36


@pytest.mark.parametrize("exporter", EXPORTS)
def test_scorers_see_the_question_answer_metadata_and_the_agents_instructions(exporter):
    data = scoring_input_from_spans("t", summaries(exporter))
    assert data.span_type == "agent_run"
    assert data.question == "What is the weather in Paris?"
    assert data.output_text == "It is sunny, 21 C in Paris."
    assert data.metadata["expected_tools"] == ["weather"]
    assert data.system_prompt == INSTRUCTIONS


def test_the_agents_instructions_are_read_from_its_agent_run_span_only():
    root = next(s for s in exported("otel") if s["parentSpanId"] is None)
    assert mastra_instructions(root["attributes"]) == INSTRUCTIONS
    step = next(s for s in exported("otel") if s["attributes"]["mastra.span.type"] == "model_step")
    assert mastra_instructions({**step["attributes"], "gen_ai.system_instructions": "x"}) == ""


@pytest.mark.parametrize(
    ("mastra_type", "expected"),
    [
        ("mcp_tool_call", "tool_call"),
        ("provider_tool_call", "tool_call"),
        ("workflow_run", "workflow_run"),
        ("workflow_step", "workflow_step"),
        ("workflow_conditional", "workflow_step"),
        ("workflow_parallel", "workflow_step"),
        ("workflow_loop", "workflow_step"),
        ("processor_run", "workflow_step"),
        ("rag_embedding", "embedding"),
        ("rag_vector_operation", "retrieval"),
        ("memory_operation", "generic"),
        ("scorer_run", "generic"),
    ],
)
def test_mastra_span_types_decide_over_openinference_and_genai(mastra_type, expected):
    # @mastra/arize labels every type it does not know CHAIN, and the OTel exporter
    # writes the type as gen_ai.operation.name; neither may change the type.
    attributes = {
        "mastra.span.type": mastra_type,
        "openinference.span.kind": "CHAIN",
        "gen_ai.operation.name": mastra_type,
    }
    assert span_type_of(attributes, is_root=True) == expected


def test_a_workflow_run_its_steps_and_its_agents_processor_get_their_types_and_io():
    mapped = mapped_by_type(WORKFLOW)
    assert {t: [m.span_type for m in spans] for t, spans in mapped.items()} == {
        "workflow_run": ["workflow_run"],
        "workflow_step": ["workflow_step", "workflow_step"],
        "processor_run": ["workflow_step"],
        "agent_run": ["agent_run"],
        "model_generation": ["llm_generation"],
        "model_step": ["workflow_step"],
        "model_inference": ["llm_generation"],
        "model_chunk": ["generic"],
    }
    (run,) = mapped["workflow_run"]
    assert (run.input, run.output) == ({"city": "Paris"}, {"summary": "Sunny all day in Paris."})
    assert [(s.input, s.output) for s in mapped["workflow_step"]] == [
        ({"city": "Paris"}, {"forecast": "Sunny in Paris"}),
        ({"forecast": "Sunny in Paris"}, {"summary": "Sunny all day in Paris."}),
    ]
    (processor,) = mapped["processor_run"]
    assert processor.input["messages"][0]["role"] == "user"


def test_a_workflow_traces_metadata_and_its_agents_instructions_reach_scorers():
    data = scoring_input_from_spans("t", summaries(WORKFLOW))
    assert data.span_type == "workflow_run"
    assert data.metadata["expected_output"] == "Sunny"
    assert data.system_prompt == "Summarise the forecast."
    assert [(s.input_tokens, s.output_tokens) for s in data.llm_steps if s.input_tokens] == [
        (25, 9)
    ]


def test_an_mcp_tool_call_is_a_tool_call_with_its_arguments_and_result():
    # What @mastra/otel-exporter 1.4.0's getAttributes() writes for an MCP tool call.
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "mastra.span.type": "mcp_tool_call",
        "gen_ai.tool.call.arguments": '{"city":"Paris"}',
        "gen_ai.tool.call.result": '{"content":[{"type":"text","text":"Sunny"}]}',
        "gen_ai.tool.name": "get_forecast",
        "gen_ai.tool.call.id": "call_0007",
        "server.address": "weather-mcp",
        "mastra.mcp_tool_call.server_name": "weather-mcp",
        "mastra.mcp_tool_call.server_version": "1.2.0",
    }
    mapped = map_attributes(attributes)
    assert (mapped.span_type, mapped.name) == ("tool_call", "get_forecast")
    assert mapped.input == {"city": "Paris"}
    assert mapped.output == {"content": [{"type": "text", "text": "Sunny"}]}


def test_metadata_that_only_looks_like_json_stays_text():
    metadata = mastra_metadata(
        {"mastra.span.type": "agent_run", "mastra.metadata.note": "[draft", "mastra.metadata.n": 3}
    )
    assert metadata == {"note": "[draft", "n": 3}
