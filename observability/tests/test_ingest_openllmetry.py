"""OpenLLMetry's OpenAI instrumentation (OpenTelemetry GenAI attributes), exporting live.

The real ``opentelemetry-instrumentation-openai`` (Traceloop's OpenLLMetry)
wraps the real ``openai`` client talking to a loopback OpenAI-compatible
server, and writes ``gen_ai.input.messages`` / ``gen_ai.output.messages`` with
the system prompt as a ``system`` message. The agent span around the calls is
written as the GenAI conventions describe an ``invoke_agent`` span.
"""

import json

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from observability.models import Trace
from observability.services import create_ingest_key
from scoring.inputs import build_scoring_input
from tests.fake_openai import FakeOpenAI, Reply

pytestmark = pytest.mark.django_db(transaction=True)

SYSTEM_PROMPT = "You are Acme's support agent. Answer in one sentence."
QUESTION = "Where is my order 1042?"
ANSWER = "Your order 1042 shipped yesterday and arrives Friday."


class ExportTo(SpanExporter):
    """Passes spans to the exporter of the running test."""

    target: SpanExporter | None = None

    def export(self, spans):
        return self.target.export(spans) if self.target else SpanExportResult.FAILURE


@pytest.fixture(scope="module")
def instrumented():
    """Instrument once: OpenLLMetry's ``uninstrument`` leaves its stream wrappers in
    place, so instrumenting again would count every streamed chunk twice."""
    relay = ExportTo()
    provider = TracerProvider(resource=Resource.create({"service.name": "acme-support"}))
    provider.add_span_processor(SimpleSpanProcessor(relay))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield provider, relay
    instrumentor.uninstrument()
    provider.shutdown()


@pytest.fixture
def tracer_provider(instrumented, live_server):
    provider, relay = instrumented
    _, secret = create_ingest_key(name="openllmetry tests")
    relay.target = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    yield provider
    relay.target.shutdown()
    relay.target = None


def ask(client: openai.OpenAI, call: str) -> str:
    """The answer to QUESTION under SYSTEM_PROMPT, by one of the client's APIs."""
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": QUESTION},
    ]
    if call == "chat":
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        return completion.choices[0].message.content
    if call == "streamed chat":
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    response = client.responses.create(
        model="gpt-4o-mini", instructions=SYSTEM_PROMPT, input=QUESTION
    )
    return response.output_text


def genai_messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


@pytest.mark.parametrize("call", ["chat", "streamed chat", "responses"])
def test_a_genai_agent_gives_scorers_its_system_prompt_question_and_answer(tracer_provider, call):
    tracer = tracer_provider.get_tracer("acme-support")
    with (
        FakeOpenAI([Reply(text=ANSWER, input_tokens=40, output_tokens=11)]) as llm,
        tracer.start_as_current_span("invoke_agent support-agent") as root,
    ):
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.agent.name", "support-agent")
        root.set_attribute("gen_ai.input.messages", genai_messages("user", QUESTION))
        answer = ask(openai.OpenAI(base_url=llm.base_url, api_key="k", max_retries=0), call)
        root.set_attribute("gen_ai.output.messages", genai_messages("assistant", answer))
        trace_id = format(root.get_span_context().trace_id, "032x")

    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.span_type, trace.span_count) == ("agent_run", 2)
    assert (trace.input_tokens, trace.output_tokens) == (40, 11)
    generation = trace.spans.get(span_type="llm_generation")
    assert generation.model == "gpt-4o-mini"
    assert generation.input[0] == {
        "role": "system",
        "parts": [{"type": "text", "content": SYSTEM_PROMPT}],
    }
    assert generation.output[0]["parts"][0]["content"] == ANSWER

    data = build_scoring_input(trace_id)
    assert (data.question, data.output_text, data.system_prompt) == (
        QUESTION,
        ANSWER,
        SYSTEM_PROMPT,
    )
    (step,) = data.llm_steps
    assert (step.input_text, step.output_text) == (QUESTION, ANSWER)
