"""Decode OTLP trace exports (protobuf and OTLP/JSON) into ``SpanRecord`` values.

Pure functions, no ORM: the ingest view reads the body, calls ``decode_export``
and hands the records to ``observability.services.ingest_spans``. A span that
cannot be stored (missing or malformed ids, no start time) is counted as
rejected with a reason, and the rest of the export is still decoded; a body
that is not an export at all raises ``OtlpDecodeError``.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from observability.conventions import map_attributes
from observability.records import SpanRecord

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_REASONS = 5  # reasons quoted in the partial-success message
ID_FIELDS = {"traceId": "trace_id", "spanId": "span_id", "parentSpanId": "parent_span_id"}
# A one-byte id: wrong length on purpose, so a malformed hex id is rejected
# span by span instead of failing the whole export.
_MALFORMED_ID = base64.b64encode(b"!").decode()


M = TypeVar("M", bound=Message)


class OtlpDecodeError(ValueError):
    """The body is not an OTLP export in the announced encoding."""


class RejectedSpan(ValueError):
    """One span that cannot be stored; the message says why."""


@dataclass
class DecodedExport:
    """The spans of one export request, and how many were rejected and why."""

    spans: list[SpanRecord] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)

    @property
    def message(self) -> str:
        if not self.rejected:
            return ""
        more = self.rejected - len(self.reasons)
        text = f"{self.rejected} span(s) rejected: " + "; ".join(self.reasons)
        return text + (f"; and {more} more" if more > 0 else "")


def decode_export(body: bytes, content_type: str) -> DecodedExport:
    """Decode an export body in ``content_type`` (protobuf or JSON) into span records."""
    request = request_from_json(body) if content_type == JSON else request_from_protobuf(body)
    return records_from_request(request)


def request_from_protobuf(body: bytes) -> ExportTraceServiceRequest:
    return message_from_protobuf(body, ExportTraceServiceRequest)


def request_from_json(body: bytes) -> ExportTraceServiceRequest:
    """Parse OTLP/JSON, whose trace and span ids are hex strings (protobuf JSON uses base64)."""
    return message_from_json(body, ExportTraceServiceRequest, _hex_ids_to_base64, "resourceSpans")


def message_from_protobuf(body: bytes, message_class: type[M]) -> M:
    """Parse a protobuf export request (traces or logs) or raise OtlpDecodeError."""
    try:
        return message_class.FromString(body)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise OtlpDecodeError(
            f"The body is not a protobuf {message_class.DESCRIPTOR.name}: {error}"
        ) from error


def message_from_json(
    body: bytes,
    message_class: type[M],
    hex_ids_to_base64: Callable[[dict[str, Any]], None],
    list_name: str,
) -> M:
    """Parse an OTLP/JSON export request; ``hex_ids_to_base64`` rewrites its hex ids in place."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise OtlpDecodeError(f"The body is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise OtlpDecodeError(f"The body must be a JSON object with a {list_name} list.")
    hex_ids_to_base64(document)
    try:
        return json_format.ParseDict(document, message_class(), ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, RecursionError) as error:
        raise OtlpDecodeError(
            f"The body is not an OTLP/JSON {message_class.DESCRIPTOR.name}: {error}"
        ) from error


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    for resource_spans in _dicts(document.get("resourceSpans", document.get("resource_spans"))):
        for scope_spans in _dicts(
            resource_spans.get("scopeSpans", resource_spans.get("scope_spans"))
        ):
            for span in _dicts(scope_spans.get("spans")):
                _convert_ids(span)
                for link in _dicts(span.get("links")):
                    _convert_ids(link)


def _convert_ids(item: dict[str, Any]) -> None:
    for camel, snake in ID_FIELDS.items():
        name = camel if camel in item else snake if snake in item else None
        if name is None or not isinstance(item[name], str) or item[name] == "":
            continue
        try:
            item[name] = base64.b64encode(bytes.fromhex(item[name])).decode()
        except ValueError:
            item[name] = _MALFORMED_ID


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def records_from_request(request: ExportTraceServiceRequest) -> DecodedExport:
    """Turn every span of an export into a SpanRecord, rejecting the ones that cannot be stored."""
    decoded = DecodedExport()
    for resource_spans in request.resource_spans:
        resource = key_values(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                try:
                    decoded.spans.append(span_record(span, resource))
                except RejectedSpan as reason:
                    decoded.reject(str(reason))
    return decoded


def span_record(span: OtlpSpan, resource: dict[str, Any]) -> SpanRecord:
    """Map one OTLP span onto a SpanRecord (raises RejectedSpan when it cannot be stored)."""
    trace_id = _id(span.trace_id, 16, "trace id", span.name)
    span_id = _id(span.span_id, 8, "span id", span.name)
    parent_span_id = _id(span.parent_span_id, 8, "parent span id", span.name, required=False)
    if not span.start_time_unix_nano:
        raise RejectedSpan(f"span {span_id} ({span.name!r}) has no start time")
    started_at = _time(span.start_time_unix_nano, span_id)
    ended_at = _time(span.end_time_unix_nano, span_id) if span.end_time_unix_nano else None

    attributes = key_values(span.attributes)
    mapped = map_attributes(attributes, is_root=parent_span_id is None)
    events = [_event(event) for event in span.events]
    status, error_message = _status(span.status, events)
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=(span.name or mapped.name)[:512],
        span_type=mapped.span_type,
        status=status,
        error_message=error_message,
        started_at=started_at,
        ended_at=ended_at,
        input=mapped.input,
        output=mapped.output,
        attributes=attributes,
        resource=resource,
        events=events,
        model=mapped.model,
        input_tokens=mapped.input_tokens,
        output_tokens=mapped.output_tokens,
    )


def _id(raw: bytes, size: int, label: str, span_name: str, *, required: bool = True) -> str | None:
    if not raw or not any(raw):
        if required:
            raise RejectedSpan(f"span {span_name!r} has no {label}")
        return None
    if len(raw) != size:
        raise RejectedSpan(
            f"span {span_name!r} has a malformed {label} ({len(raw)} bytes, expected {size})"
        )
    return raw.hex()


def _time(nanos: int, span_id: str) -> datetime:
    try:
        return EPOCH + timedelta(microseconds=nanos // 1000)
    except OverflowError:
        raise RejectedSpan(f"span {span_id} has a timestamp out of range") from None


def _status(status: Status, events: list[dict[str, Any]]) -> tuple[str, str]:
    exception = next((e for e in events if e["name"] == "exception"), None)
    if status.code == Status.STATUS_CODE_ERROR or exception is not None:
        message = status.message
        if not message and exception is not None:
            attrs = exception["attributes"]
            kind, text = attrs.get("exception.type", ""), attrs.get("exception.message", "")
            message = f"{kind}: {text}" if kind and text else str(kind or text)
        return "error", message
    if status.code == Status.STATUS_CODE_OK:
        return "ok", ""
    return "unset", ""


def _event(event: OtlpSpan.Event) -> dict[str, Any]:
    return {
        "name": event.name,
        "time": (EPOCH + timedelta(microseconds=event.time_unix_nano // 1000)).isoformat()
        if event.time_unix_nano
        else None,
        "attributes": key_values(event.attributes),
    }


def key_values(pairs) -> dict[str, Any]:
    """OTLP KeyValue list → plain dict (the last value wins for a repeated key)."""
    return {pair.key: any_value(pair.value) for pair in pairs}


def any_value(value: AnyValue) -> Any:
    """OTLP AnyValue → JSON-ready Python value (arrays → lists, kvlists → dicts, bytes → base64)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        number = value.double_value
        return number if number == number and abs(number) != float("inf") else str(number)
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return key_values(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def export_response(decoded: DecodedExport, content_type: str) -> bytes:
    """The ExportTraceServiceResponse for this export, in the request's encoding."""
    response = ExportTraceServiceResponse()
    if decoded.rejected:
        response.partial_success.rejected_spans = decoded.rejected
        response.partial_success.error_message = decoded.message
    if content_type == JSON:
        return json.dumps(json_format.MessageToDict(response)).encode()
    return response.SerializeToString()


def status_body(message: str, content_type: str, code: int) -> tuple[bytes, str]:
    """An error body and its content type.

    Protobuf clients get a ``google.rpc.Status`` (what the OTLP specification
    asks for), everyone else ``{"error": ...}``. The Status message comes from
    ``googleapis-common-protos``; without it, protobuf clients get JSON too.
    """
    if content_type == PROTOBUF:
        try:
            from google.rpc.status_pb2 import Status as RpcStatus
        except ImportError:
            pass
        else:
            return RpcStatus(code=code, message=message).SerializeToString(), PROTOBUF
    return json.dumps({"error": message}).encode(), JSON


class BodyTooLarge(ValueError):
    """The body, or what it decompresses to, is above the configured limit."""


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing to produce more than ``limit`` bytes.

    Decompression stops as soon as the output passes the limit, so a small
    "gzip bomb" never becomes a large allocation.
    """
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise BodyTooLarge(f"The decompressed body is larger than {limit} bytes.")
        out += inflater.flush()
    except zlib.error as error:
        raise OtlpDecodeError(f"The body is not valid gzip: {error}") from error
    if not inflater.eof:
        raise OtlpDecodeError("The body is not valid gzip: the stream is truncated.")
    if len(out) > limit:
        raise BodyTooLarge(f"The decompressed body is larger than {limit} bytes.")
    return out
