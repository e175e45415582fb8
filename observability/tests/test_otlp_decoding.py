"""Decoding OTLP exports and mapping attributes, without a database."""

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from observability import otlp
from observability.conventions import map_attributes, span_type_of

FIXTURE = Path(__file__).parent / "fixtures" / "otlp_export.json"
TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
ROOT = bytes.fromhex("b7ad6b7169203331")
CHILD = bytes.fromhex("00f067aa0ba902b7")
NS = 1_764_320_400_000_000_000


def kv(key, value):
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def export(*spans, resource=()):
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={"attributes": list(resource)}, scope_spans=[ScopeSpans(spans=spans)]
            )
        ]
    )


def otlp_span(span_id=CHILD, parent=ROOT, trace_id=TRACE, start=NS, end=NS + 5_000_000, **kw):
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        **kw,
    )


def test_openinference_llm_attributes_become_type_model_tokens_and_parsed_input():
    mapped = map_attributes(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.token_count.prompt": 120,
            "llm.token_count.completion": 18,
            "input.value": '{"messages": [{"role": "user", "content": "hi"}]}',
            "input.mime_type": "application/json",
            "output.value": "Hello! How can I help?",
            "output.mime_type": "text/plain",
        }
    )
    assert mapped.span_type == "llm_generation"
    assert mapped.model == "gpt-4o-mini"
    assert (mapped.input_tokens, mapped.output_tokens) == (120, 18)
    assert mapped.input == {"messages": [{"role": "user", "content": "hi"}]}
    assert mapped.output == "Hello! How can I help?"


def test_openinference_text_values_stay_text_even_when_they_look_like_json():
    mapped = map_attributes({"input.value": '{"not": "parsed"}', "input.mime_type": "text/plain"})
    assert mapped.input == '{"not": "parsed"}'


def test_flattened_openinference_messages_are_rebuilt_when_there_is_no_input_value():
    mapped = map_attributes(
        {
            "openinference.span.kind": "LLM",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "Where is my order?",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "Be brief.",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "It shipped.",
        }
    )
    assert mapped.input == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is my order?"},
    ]
    assert mapped.output == [{"role": "assistant", "content": "It shipped."}]


@pytest.mark.parametrize(
    ("attributes", "is_root", "expected"),
    [
        ({"openinference.span.kind": "AGENT"}, True, "agent_run"),
        ({"openinference.span.kind": "CHAIN"}, True, "workflow_run"),
        ({"openinference.span.kind": "CHAIN"}, False, "workflow_step"),
        ({"openinference.span.kind": "TOOL", "tool.name": "search"}, False, "tool_call"),
        ({"openinference.span.kind": "RETRIEVER"}, False, "retrieval"),
        ({"openinference.span.kind": "EMBEDDING"}, False, "embedding"),
        ({"gen_ai.operation.name": "invoke_agent"}, True, "agent_run"),
        ({"gen_ai.operation.name": "chat"}, False, "llm_generation"),
        ({"gen_ai.operation.name": "text_completion"}, False, "llm_generation"),
        ({"gen_ai.operation.name": "execute_tool"}, False, "tool_call"),
        ({"gen_ai.operation.name": "embeddings"}, False, "embedding"),
        ({"tracescore.span_type": "workflow_step"}, False, "workflow_step"),
        (
            {"tracescore.span_type": "agent_run", "openinference.span.kind": "LLM"},
            True,
            "agent_run",
        ),
        ({"tracescore.span_type": "nonsense"}, False, "generic"),
        ({"http.method": "GET"}, True, "generic"),
    ],
)
def test_span_type_follows_native_then_openinference_then_genai(attributes, is_root, expected):
    assert span_type_of(attributes, is_root=is_root) == expected


def test_genai_attributes_give_messages_model_and_tokens():
    mapped = map_attributes(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 182,
            "gen_ai.usage.output_tokens": 41,
            "gen_ai.input.messages": '[{"role": "user", "parts": []}]',
            "gen_ai.output.messages": '[{"role": "assistant", "parts": []}]',
        }
    )
    assert mapped.span_type == "llm_generation"
    assert mapped.model == "gpt-4o-2024-08-06"
    assert (mapped.input_tokens, mapped.output_tokens) == (182, 41)
    assert mapped.input == [{"role": "user", "parts": []}]
    assert mapped.output == [{"role": "assistant", "parts": []}]


def test_genai_tool_call_arguments_and_result_are_the_tool_input_and_output():
    mapped = map_attributes(
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "get_forecast",
            "gen_ai.tool.call.arguments": '{"city": "Lyon"}',
            "gen_ai.tool.call.result": "sunny",
        }
    )
    assert (mapped.span_type, mapped.name) == ("tool_call", "get_forecast")
    assert mapped.input == {"city": "Lyon"}
    assert mapped.output == "sunny"


def test_native_input_and_output_are_json_and_win_over_other_conventions():
    mapped = map_attributes(
        {
            "tracescore.input": '{"question": "why?"}',
            "tracescore.output": "plain words",
            "input.value": "ignored",
        }
    )
    assert mapped.input == {"question": "why?"}
    assert mapped.output == "plain words"


def test_a_protobuf_export_decodes_ids_times_attributes_and_resource():
    request = export(
        otlp_span(
            name="lookup_order",
            attributes=[
                kv("openinference.span.kind", "TOOL"),
                kv("tool.name", "lookup_order"),
                kv("retry", 2),
                KeyValue(
                    key="tags",
                    value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a")])),
                ),
                KeyValue(
                    key="meta",
                    value=AnyValue(kvlist_value=KeyValueList(values=[kv("ok", True)])),
                ),
            ],
            status=Status(code=Status.STATUS_CODE_OK),
        ),
        resource=[kv("service.name", "shop")],
    )
    decoded = otlp.decode_export(request.SerializeToString(), otlp.PROTOBUF)
    assert decoded.rejected == 0
    (record,) = decoded.spans
    assert record.trace_id == TRACE.hex()
    assert record.span_id == CHILD.hex()
    assert record.parent_span_id == ROOT.hex()
    assert record.span_type == "tool_call"
    assert record.status == "ok"
    assert record.started_at.isoformat() == "2025-11-28T09:00:00+00:00"
    assert record.duration_ms == 5
    assert record.resource == {"service.name": "shop"}
    assert record.attributes["tags"] == ["a"]
    assert record.attributes["meta"] == {"ok": True}
    assert record.attributes["retry"] == 2


def test_status_error_and_exception_events_mark_the_span_failed_with_the_message():
    exception = Span.Event(
        name="exception",
        time_unix_nano=NS,
        attributes=[kv("exception.type", "TimeoutError"), kv("exception.message", "no answer")],
    )
    request = export(
        otlp_span(span_id=b"\x01" * 8, events=[exception]),
        otlp_span(
            span_id=b"\x02" * 8,
            status=Status(code=Status.STATUS_CODE_ERROR, message="payment declined"),
        ),
    )
    first, second = otlp.records_from_request(request).spans
    assert (first.status, first.error_message) == ("error", "TimeoutError: no answer")
    assert (second.status, second.error_message) == ("error", "payment declined")


def test_spans_with_missing_or_malformed_ids_or_no_start_are_rejected_and_the_rest_kept():
    request = export(
        otlp_span(trace_id=b""),
        otlp_span(span_id=b"\x01\x02"),
        otlp_span(span_id=b"\x03" * 8, start=0),
        otlp_span(span_id=b"\x04" * 8, parent=b"\x05" * 3),
        otlp_span(span_id=b"\x06" * 8, name="good"),
    )
    decoded = otlp.records_from_request(request)
    assert [s.name for s in decoded.spans] == ["good"]
    assert decoded.rejected == 4
    assert "has no trace id" in decoded.message
    assert "malformed span id" in decoded.message
    assert "no start time" in decoded.message


def test_a_span_that_ends_before_it_starts_or_runs_too_long_is_rejected_alone():
    hour = 3600 * 10**9
    request = export(
        otlp_span(span_id=b"\x01" * 8, name="backwards", start=NS, end=NS - 1_000_000),
        otlp_span(span_id=b"\x02" * 8, name="for ever", start=NS, end=NS + 25 * hour),
        otlp_span(span_id=b"\x03" * 8, name="long but fine", start=NS, end=NS + 23 * hour),
        otlp_span(span_id=b"\x04" * 8, name="still running", start=NS, end=0),
    )
    decoded = otlp.records_from_request(request, max_span_duration=timedelta(hours=24))

    assert [s.name for s in decoded.spans] == ["long but fine", "still running"]
    assert decoded.rejected == 2
    assert "'backwards') ends before it starts" in decoded.message
    assert "'for ever') lasts 1 day, 1:00:00, longer than the maximum of 1 day" in decoded.message
    assert all(s.duration_ms is None or s.duration_ms >= 0 for s in decoded.spans)


@pytest.mark.parametrize(
    ("body", "explanation"),
    [
        (gzip.compress(b"x"), "it is gzip data; send it with 'Content-Encoding: gzip'"),
        (
            b'{"resourceSpans": []}',
            "it looks like JSON; send it with 'Content-Type: application/json'",
        ),
        (b"\x0a\xff\x01abc", "at byte 1, field 1 claims 255 bytes but only 3 remain"),
        (b"\x0f\x00", "at byte 0, field 1 has an invalid wire type 7"),
    ],
)
def test_a_body_that_is_not_protobuf_is_explained_not_just_called_unparsable(body, explanation):
    with pytest.raises(otlp.OtlpDecodeError) as error:
        otlp.decode_export(body, otlp.PROTOBUF)
    assert explanation in str(error.value)
    assert "Error parsing message" not in str(error.value)


def test_otlp_json_fixture_decodes_hex_ids_and_rejects_the_malformed_one():
    decoded = otlp.decode_export(FIXTURE.read_bytes(), otlp.JSON)
    assert decoded.rejected == 1
    assert "malformed span id" in decoded.message
    by_name = {s.name: s for s in decoded.spans}
    root = by_name["invoke_agent weather-agent"]
    assert root.trace_id == "5b8efff798038103d269b633813fc60c"
    assert root.span_id == "eee19b7ec3c1b173"
    assert root.parent_span_id is None
    assert root.span_type == "agent_run"
    assert root.input == "Will it rain in Lyon tomorrow?"
    chat = by_name["chat gpt-4o"]
    assert chat.parent_span_id == "eee19b7ec3c1b173"
    assert (chat.model, chat.input_tokens, chat.output_tokens) == ("gpt-4o-2024-08-06", 182, 41)
    assert chat.attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]
    tool = by_name["execute_tool get_forecast"]
    assert tool.output == {"rain_probability": 0.7, "high_c": 14}
    assert tool.attributes["weather.provider"] == {"name": "open-meteo", "cached": False}
    assert root.resource["service.name"] == "weather-agent"


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (b"\xff\xfe not protobuf at all", otlp.PROTOBUF),
        (b"{not json", otlp.JSON),
        (b"[1, 2]", otlp.JSON),
        (json.dumps({"resourceSpans": 5}).encode(), otlp.JSON),
        (b"[" * 100_000 + b"]" * 100_000, otlp.JSON),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5}]}]}]}', otlp.JSON),
    ],
)
def test_bodies_that_are_not_exports_raise_a_decode_error(body, encoding):
    with pytest.raises(otlp.OtlpDecodeError):
        otlp.decode_export(body, encoding)


def test_gunzip_stops_at_the_limit_instead_of_inflating_a_bomb():
    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(otlp.BodyTooLarge):
        otlp.gunzip(bomb, 1_000_000)
    assert otlp.gunzip(gzip.compress(b"hello"), 10) == b"hello"
    with pytest.raises(otlp.OtlpDecodeError):
        otlp.gunzip(b"not gzip", 10)
    with pytest.raises(otlp.OtlpDecodeError):
        otlp.gunzip(gzip.compress(b"hello world")[:-10], 100)


def test_gunzip_inflates_every_member_of_a_multi_member_body():
    two_members = gzip.compress(b"hello ") + gzip.compress(b"world")
    assert otlp.gunzip(two_members, 100) == b"hello world"
    assert otlp.gunzip(two_members + b"\0\0\0", 100) == b"hello world"
    with pytest.raises(otlp.BodyTooLarge):
        otlp.gunzip(gzip.compress(b"x" * 60) + gzip.compress(b"\0" * 1_000_000), 100)
    with pytest.raises(otlp.OtlpDecodeError, match="not valid gzip"):
        otlp.gunzip(gzip.compress(b"hello") + b"trailing garbage", 100)


def test_the_response_counts_rejected_spans_in_the_request_encoding():
    decoded = otlp.DecodedExport()
    decoded.reject("span 'x' has no trace id")
    as_proto = ExportTraceServiceResponse.FromString(otlp.export_response(decoded, otlp.PROTOBUF))
    assert as_proto.partial_success.rejected_spans == 1
    as_json = json.loads(otlp.export_response(decoded, otlp.JSON))
    assert as_json["partialSuccess"]["rejectedSpans"] == "1"
    assert "has no trace id" in as_json["partialSuccess"]["errorMessage"]
    assert otlp.export_response(otlp.DecodedExport(), otlp.JSON) == b"{}"
