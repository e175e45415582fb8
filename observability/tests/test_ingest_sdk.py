"""The real OpenTelemetry Python SDK exporting over OTLP/HTTP to a live tracescore server."""

import json

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from observability.models import Trace
from observability.services import create_ingest_key, revoke_ingest_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ingest_key(transactional_db):
    return create_ingest_key(name="sdk tests")


@pytest.fixture
def make_provider(live_server, ingest_key):
    providers = []

    def make(processor=BatchSpanProcessor, secret=None, **exporter_options):
        exporter = OTLPSpanExporter(
            endpoint=f"{live_server.url}/v1/traces",
            headers={"Authorization": f"Bearer {secret or ingest_key[1]}"},
            timeout=10,
            **exporter_options,
        )
        provider = TracerProvider(resource=Resource.create({"service.name": "shop-support"}))
        provider.add_span_processor(processor(exporter))
        providers.append(provider)
        return provider, exporter

    yield make
    for provider in providers:
        provider.shutdown()


def spans_by_type(trace):
    found = {}
    for span in trace.spans.all():
        found.setdefault(span.span_type, []).append(span)
    return found


def test_an_openinference_agent_run_arrives_with_parents_types_io_model_and_tokens(make_provider):
    provider, _ = make_provider()
    tracer = provider.get_tracer("support-agent")
    with tracer.start_as_current_span("agent run: support-agent") as root:
        root.set_attribute("openinference.span.kind", "AGENT")
        root.set_attribute("input.value", "Where is my order 1042?")
        with tracer.start_as_current_span("chat gpt-4o-mini") as llm:
            llm.set_attribute("openinference.span.kind", "LLM")
            llm.set_attribute("llm.model_name", "gpt-4o-mini")
            llm.set_attribute("llm.token_count.prompt", 120)
            llm.set_attribute("llm.token_count.completion", 18)
            llm.set_attribute("input.value", json.dumps({"messages": [{"role": "user"}]}))
            llm.set_attribute("input.mime_type", "application/json")
            llm.set_attribute("output.value", "Let me look that up.")
        with tracer.start_as_current_span("lookup_order") as tool:
            tool.set_attribute("openinference.span.kind", "TOOL")
            tool.set_attribute("tool.name", "lookup_order")
            tool.set_attribute("input.value", '{"order_id": "1042"}')
            tool.set_attribute("input.mime_type", "application/json")
            tool.set_attribute("output.value", '{"status": "shipped"}')
            tool.set_attribute("output.mime_type", "application/json")
        root.set_attribute("output.value", "It shipped yesterday.")
        trace_id = format(root.get_span_context().trace_id, "032x")
        root_id = format(root.get_span_context().span_id, "016x")
    assert provider.force_flush(10_000)

    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.name, trace.span_type, trace.span_count, trace.status) == (
        "agent run: support-agent",
        "agent_run",
        3,
        "ok",
    )
    assert trace.service_name == "shop-support"
    types = spans_by_type(trace)
    (agent,) = types["agent_run"]
    (llm,) = types["llm_generation"]
    (tool,) = types["tool_call"]
    assert agent.parent_span_id is None and agent.span_id == root_id
    assert llm.parent_span_id == root_id and tool.parent_span_id == root_id
    assert (agent.input, agent.output) == ("Where is my order 1042?", "It shipped yesterday.")
    assert (llm.model, llm.input_tokens, llm.output_tokens) == ("gpt-4o-mini", 120, 18)
    assert llm.input == {"messages": [{"role": "user"}]}
    assert (tool.input, tool.output) == ({"order_id": "1042"}, {"status": "shipped"})
    assert (trace.input_tokens, trace.output_tokens) == (120, 18)


def test_a_genai_agent_run_arrives_gzipped_with_messages_model_tokens_and_tool_calls(make_provider):
    provider, _ = make_provider(compression=Compression.Gzip)
    tracer = provider.get_tracer("weather-agent")
    messages = [{"role": "user", "parts": [{"type": "text", "content": "Rain in Lyon?"}]}]
    with tracer.start_as_current_span("invoke_agent weather-agent") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.agent.name", "weather-agent")
        with tracer.start_as_current_span("chat gpt-4o") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.request.model", "gpt-4o")
            chat.set_attribute("gen_ai.usage.input_tokens", 182)
            chat.set_attribute("gen_ai.usage.output_tokens", 41)
            chat.set_attribute("gen_ai.input.messages", json.dumps(messages))
            chat.set_attribute("gen_ai.output.messages", json.dumps([{"role": "assistant"}]))
        with tracer.start_as_current_span("execute_tool get_forecast") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "get_forecast")
            tool.set_attribute("gen_ai.tool.call.arguments", '{"city": "Lyon"}')
            tool.set_attribute("gen_ai.tool.call.result", '{"rain": 0.7}')
            tool.set_status(Status(StatusCode.ERROR, "forecast service timed out"))
        trace_id = format(root.get_span_context().trace_id, "032x")
        root_id = format(root.get_span_context().span_id, "016x")
    assert provider.force_flush(10_000)

    trace = Trace.objects.get(trace_id=trace_id)
    assert (trace.name, trace.span_type, trace.span_count) == (
        "invoke_agent weather-agent",
        "agent_run",
        3,
    )
    assert (trace.status, trace.error_message) == ("error", "forecast service timed out")
    types = spans_by_type(trace)
    (chat,) = types["llm_generation"]
    (tool,) = types["tool_call"]
    assert chat.parent_span_id == root_id and tool.parent_span_id == root_id
    assert (chat.model, chat.input_tokens, chat.output_tokens) == ("gpt-4o", 182, 41)
    assert chat.input == messages
    assert (tool.input, tool.output) == ({"city": "Lyon"}, {"rain": 0.7})
    assert tool.status == "error"


def test_an_exception_recorded_by_the_sdk_marks_the_span_failed(make_provider):
    provider, _ = make_provider(processor=SimpleSpanProcessor)
    tracer = provider.get_tracer("support-agent")
    with (
        pytest.raises(TimeoutError),
        tracer.start_as_current_span("refund_payment") as span,
    ):
        trace_id = format(span.get_span_context().trace_id, "032x")
        raise TimeoutError("payment provider did not answer")

    trace = Trace.objects.get(trace_id=trace_id)
    assert trace.status == "error"
    assert "payment provider did not answer" in trace.error_message
    event = trace.spans.get().events[0]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "TimeoutError"


def test_an_exporter_with_a_revoked_key_fails_and_nothing_is_stored(make_provider, ingest_key):
    revoke_ingest_key(key=ingest_key[0])
    provider, exporter = make_provider(processor=SimpleSpanProcessor)
    tracer = provider.get_tracer("support-agent")
    with tracer.start_as_current_span("agent run") as span:
        finished = span
    assert exporter.export([finished]) == SpanExportResult.FAILURE
    assert not Trace.objects.exists()


def test_an_sdk_export_over_the_span_cap_fails_and_nothing_is_stored(
    live_server, ingest_key, settings
):
    settings.TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT = 10
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {ingest_key[1]}"},
        timeout=10,
    )
    tracer = TracerProvider().get_tracer("support-agent")  # no processor: we export by hand
    finished = []
    for n in range(11):
        with tracer.start_as_current_span(f"step {n}") as span:
            finished.append(span)
    assert exporter.export(finished) == SpanExportResult.FAILURE
    assert not Trace.objects.exists()
    assert exporter.export(finished[:10]) == SpanExportResult.SUCCESS
    assert sum(Trace.objects.values_list("span_count", flat=True)) == 10
