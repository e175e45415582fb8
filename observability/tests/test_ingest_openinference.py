"""OpenInference's OpenAI instrumentation, as a Python user runs it, exporting to a live server.

The real ``openinference-instrumentation-openai`` wraps the real ``openai``
client, which talks to a loopback OpenAI-compatible server; the real OTel SDK
exports the spans over OTLP/HTTP. We check what a user sees stored and what a
scorer is given: the question, the system prompt and the answer.
"""

import json

import openai
import pytest
from openinference.instrumentation import TracerProvider
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from observability.models import Trace
from observability.services import create_ingest_key
from scoring.inputs import build_scoring_input
from tests.fake_openai import FakeOpenAI, Reply, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)

SYSTEM_PROMPT = "You are Acme's support agent. Answer in one sentence."
QUESTION = "Where is my order 1042?"
ANSWER = "Your order 1042 shipped yesterday and arrives Friday."
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    },
}


@pytest.fixture
def tracer_provider(live_server):
    """OpenInference tracing to the live server, with the OpenAI client instrumented."""
    _, secret = create_ingest_key(name="openinference tests")
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "acme-support"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield provider
    instrumentor.uninstrument()
    provider.shutdown()


def client(llm: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="test-key", max_retries=0)


def trace_id_of(span) -> str:
    return format(span.get_span_context().trace_id, "032x")


def stored(trace_id: str) -> tuple[Trace, dict[str, list]]:
    trace = Trace.objects.get(trace_id=trace_id)
    by_type: dict[str, list] = {}
    for span in trace.spans.in_order():
        by_type.setdefault(span.span_type, []).append(span)
    return trace, by_type


def test_a_chat_agent_with_a_system_prompt_and_a_tool_reaches_scorers_whole(tracer_provider):
    tracer = tracer_provider.get_tracer("acme-support")
    script = [
        Reply(tool_calls=[ToolCall("lookup_order", {"order_id": "1042"})], input_tokens=60),
        Reply(text=ANSWER, input_tokens=90, output_tokens=14),
    ]
    with (
        FakeOpenAI(script) as llm,
        tracer.start_as_current_span("support-agent", openinference_span_kind="agent") as root,
    ):
        root.set_input(QUESTION)
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": QUESTION},
        ]
        first = client(llm).chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=[LOOKUP]
        )
        call = first.choices[0].message.tool_calls[0]
        with tracer.start_as_current_span("lookup_order", openinference_span_kind="tool") as tool:
            tool.set_tool(name="lookup_order", parameters=json.loads(call.function.arguments))
            tool.set_input(call.function.arguments, mime_type="application/json")
            tool.set_output('{"status": "shipped"}', mime_type="application/json")
        messages += [
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"status": "shipped"}'},
        ]
        final = client(llm).chat.completions.create(model="gpt-4o-mini", messages=messages)
        root.set_output(final.choices[0].message.content)
        trace_id = trace_id_of(root)

    trace, spans = stored(trace_id)
    assert (trace.name, trace.span_type, trace.span_count) == ("support-agent", "agent_run", 4)
    assert (trace.input_tokens, trace.output_tokens) == (150, 23)
    (agent,) = spans["agent_run"]
    asks, answers = spans["llm_generation"]
    (tool,) = spans["tool_call"]
    assert (agent.input, agent.output) == (QUESTION, ANSWER)
    assert (asks.model, asks.input_tokens, asks.output_tokens) == ("gpt-4o-mini", 60, 9)
    assert asks.input["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert asks.output["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == (
        "lookup_order"
    )
    assert answers.output["choices"][0]["message"]["content"] == ANSWER
    assert (tool.name, tool.input, tool.output) == (
        "lookup_order",
        {"order_id": "1042"},
        {"status": "shipped"},
    )

    data = build_scoring_input(trace_id)
    assert (data.question, data.output_text, data.system_prompt) == (
        QUESTION,
        ANSWER,
        SYSTEM_PROMPT,
    )
    assert [step.system_prompt for step in data.llm_steps] == [SYSTEM_PROMPT, SYSTEM_PROMPT]
    assert [step.output_text for step in data.llm_steps] == ["", ANSWER]
    assert data.llm_steps[0].input_text == QUESTION
    assert [call.name for call in data.tool_calls] == ["lookup_order"]


def test_a_streamed_chat_with_a_developer_message_keeps_its_tokens_and_text(tracer_provider):
    tracer = tracer_provider.get_tracer("acme-support")

    @tracer.chain
    def support(question: str) -> str:
        stream = client(llm).chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "developer", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
                {"role": "user", "content": [{"type": "text", "text": question}]},
            ],
            stream=True,
            stream_options={"include_usage": True},
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    with FakeOpenAI([Reply(text=ANSWER, input_tokens=70, output_tokens=12)]) as llm:
        assert support(QUESTION) == ANSWER
    trace = Trace.objects.get(name="support")

    trace, spans = stored(trace.trace_id)
    assert (trace.span_type, trace.span_count) == ("workflow_run", 2)
    (generation,) = spans["llm_generation"]
    assert (generation.model, generation.input_tokens, generation.output_tokens) == (
        "gpt-4o-mini",
        70,
        12,
    )
    assert generation.input["stream"] is True
    assert generation.output["choices"][0]["message"]["content"] == ANSWER
    assert (spans["workflow_run"][0].input, spans["workflow_run"][0].output) == (QUESTION, ANSWER)

    data = build_scoring_input(trace.trace_id)
    assert (data.question, data.output_text, data.system_prompt) == (
        QUESTION,
        ANSWER,
        SYSTEM_PROMPT,
    )
    assert data.llm_steps[0].output_text == ANSWER


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_responses_call_gives_scorers_its_instructions_and_output_text(tracer_provider, stream):
    tracer = tracer_provider.get_tracer("acme-support")
    with (
        FakeOpenAI([Reply(text=ANSWER, input_tokens=40, output_tokens=11)]) as llm,
        tracer.start_as_current_span("support-agent", openinference_span_kind="agent") as root,
    ):
        root.set_input(QUESTION)
        request = {"model": "gpt-4o-mini", "instructions": SYSTEM_PROMPT, "input": QUESTION}
        if stream:
            with client(llm).responses.stream(**request) as events:
                answer = events.get_final_response().output_text
        else:
            answer = client(llm).responses.create(**request).output_text
        root.set_output(answer)
        trace_id = trace_id_of(root)
    assert llm.requests[0].body["instructions"] == SYSTEM_PROMPT

    trace, spans = stored(trace_id)
    (generation,) = spans["llm_generation"]
    assert (generation.model, generation.input_tokens, generation.output_tokens) == (
        "gpt-4o-mini",
        40,
        11,
    )
    assert generation.input["instructions"] == SYSTEM_PROMPT
    assert generation.output["output"][0]["content"][0] == {
        "type": "output_text",
        "text": ANSWER,
        "annotations": [],
        "logprobs": [],
    }

    data = build_scoring_input(trace_id)
    assert (data.question, data.output_text, data.system_prompt) == (
        QUESTION,
        ANSWER,
        SYSTEM_PROMPT,
    )
    (step,) = data.llm_steps
    assert (step.input_text, step.output_text, step.system_prompt) == (
        QUESTION,
        ANSWER,
        SYSTEM_PROMPT,
    )
