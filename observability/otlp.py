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


class TooManySpans(ValueError):
    """The export holds more spans than one export may (nothing of it is stored)."""

    def __init__(self, count: int, limit: int):
        super().__init__(
            f"The export holds {count:,} spans, more than the limit of {limit:,} spans per "
            "export (TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT); nothing was stored. "
            "Send the spans in smaller batches."
        )
        self.count, self.limit = count, limit


def decode_export(
    body: bytes,
    content_type: str,
    *,
    max_span_duration: timedelta | None = None,
    max_spans: int | None = None,
) -> DecodedExport:
    """Decode an export body in ``content_type`` (protobuf or JSON) into span records.

    A span longer than ``max_span_duration`` is rejected alone, like one that
    ends before it starts: its clock is wrong, and its duration would mislead.
    An export of more than ``max_spans`` spans raises ``TooManySpans`` as soon
    as they are counted: after parsing, before any span is mapped, so refusing
    it costs a parse (the body's size is already capped), not the minutes and
    gigabytes that mapping and storing them would.
    """
    if content_type == JSON:
        request = request_from_json(body, max_spans=max_spans)
    else:
        request = request_from_protobuf(body)
        if max_spans is not None:
            check_span_count(count_spans(request), max_spans)
    return records_from_request(request, max_span_duration=max_span_duration)


def check_span_count(count: int, limit: int) -> None:
    if count > limit:
        raise TooManySpans(count, limit)


def count_spans(request: ExportTraceServiceRequest) -> int:
    return sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)


def _count_json_spans(document: dict[str, Any]) -> int:
    return sum(
        len(scope["spans"]) if isinstance(scope.get("spans"), list) else 0
        for rs in _dicts(document.get("resourceSpans", document.get("resource_spans")))
        for scope in _dicts(rs.get("scopeSpans", rs.get("scope_spans")))
    )


def request_from_protobuf(body: bytes) -> ExportTraceServiceRequest:
    return message_from_protobuf(body, ExportTraceServiceRequest)


def why_not_protobuf(body: bytes) -> str:
    """A person's explanation of why ``body`` does not parse as a protobuf message."""
    start = body.lstrip()[:1]
    if body[:2] == b"\x1f\x8b":
        return "it is gzip data; send it with 'Content-Encoding: gzip'."
    if start in (b"{", b"["):
        return "it looks like JSON; send it with 'Content-Type: application/json'."
    problem = _wire_format_problem(body)
    return problem or "a nested message is malformed (truncated or not protobuf data)."


def _varint(body: bytes, at: int) -> tuple[int, int] | None:
    value = shift = 0
    while at < len(body) and shift < 64:
        byte = body[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    return None


def _wire_format_problem(body: bytes) -> str:
    """The first top-level wire-format error in ``body``, or "" if the top level is sound."""
    at = 0
    while at < len(body):
        tag = _varint(body, at)
        if tag is None:
            return f"at byte {at}, a field tag is cut off."
        key, after = tag
        wire_type, number = key & 7, key >> 3
        if number == 0 or wire_type in (3, 4, 6, 7):
            return f"at byte {at}, field {number} has an invalid wire type {wire_type}."
        if wire_type == 0:
            value = _varint(body, after)
            if value is None:
                return f"at byte {at}, the number of field {number} is cut off."
            at = value[1]
        elif wire_type == 1 or wire_type == 5:
            at = after + (8 if wire_type == 1 else 4)
            if at > len(body):
                return f"at byte {after}, field {number} runs past the end of the body."
        else:
            length = _varint(body, after)
            if length is None:
                return f"at byte {at}, the length of field {number} is cut off."
            at = length[1] + length[0]
            if at > len(body):
                return (
                    f"at byte {after}, field {number} claims {length[0]} bytes but only "
                    f"{len(body) - length[1]} remain (is the body truncated?)."
                )
    return ""


def request_from_json(body: bytes, *, max_spans: int | None = None) -> ExportTraceServiceRequest:
    """Parse OTLP/JSON, whose trace and span ids are hex strings (protobuf JSON uses base64).

    The spans are counted on the parsed JSON, before the slow conversion to
    protobuf, so an export of more than ``max_spans`` is refused cheaply.
    """

    def prepare(document: dict[str, Any]) -> None:
        if max_spans is not None:
            check_span_count(_count_json_spans(document), max_spans)
        _hex_ids_to_base64(document)

    return message_from_json(body, ExportTraceServiceRequest, prepare, "resourceSpans")


def message_from_protobuf(body: bytes, message_class: type[M]) -> M:
    """Parse a protobuf export request (traces or logs) or raise OtlpDecodeError."""
    try:
        return message_class.FromString(body)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise OtlpDecodeError(
            f"The body is not a protobuf {message_class.DESCRIPTOR.name}: " + why_not_protobuf(body)
        ) from error


def message_from_json(
    body: bytes,
    message_class: type[M],
    hex_ids_to_base64: Callable[[dict[str, Any]], None],
    list_name: str,
) -> M:
    """Parse an OTLP/JSON export request; ``hex_ids_to_base64`` rewrites its hex ids in place
    (and may refuse the document by raising)."""
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


def records_from_request(
    request: ExportTraceServiceRequest, *, max_span_duration: timedelta | None = None
) -> DecodedExport:
    """Turn every span of an export into a SpanRecord, rejecting the ones that cannot be stored."""
    decoded = DecodedExport()
    for resource_spans in request.resource_spans:
        resource = key_values(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                try:
                    decoded.spans.append(span_record(span, resource, max_span_duration))
                except RejectedSpan as reason:
                    decoded.reject(str(reason))
    return decoded


def span_record(
    span: OtlpSpan, resource: dict[str, Any], max_duration: timedelta | None = None
) -> SpanRecord:
    """Map one OTLP span onto a SpanRecord (raises RejectedSpan when it cannot be stored)."""
    trace_id = _id(span.trace_id, 16, "trace id", span.name)
    span_id = _id(span.span_id, 8, "span id", span.name)
    parent_span_id = _id(span.parent_span_id, 8, "parent span id", span.name, required=False)
    if not span.start_time_unix_nano:
        raise RejectedSpan(f"span {span_id} ({span.name!r}) has no start time")
    started_at = _time(span.start_time_unix_nano, span_id)
    ended_at = _time(span.end_time_unix_nano, span_id) if span.end_time_unix_nano else None
    check_duration(span_id, span.name, started_at, ended_at, max_duration)

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


def check_duration(
    span_id: str,
    name: str,
    started_at: datetime,
    ended_at: datetime | None,
    max_duration: timedelta | None,
) -> None:
    """Reject a span that ends before it starts, or lasts longer than ``max_duration``."""
    if ended_at is None:
        return
    if ended_at < started_at:
        raise RejectedSpan(f"span {span_id} ({name!r}) ends before it starts")
    if max_duration is not None and ended_at - started_at > max_duration:
        raise RejectedSpan(
            f"span {span_id} ({name!r}) lasts {ended_at - started_at}, longer than the "
            f"maximum of {max_duration} (TRACESCORE_INGEST_MAX_SPAN_SECONDS)"
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
    """Decompress a gzip body, every member of it, refusing to produce more than ``limit`` bytes.

    A gzip body may hold several members one after the other (what
    concatenating compressed chunks produces); each is inflated in turn.
    Decompression stops as soon as the output passes the limit, so a small
    "gzip bomb" never becomes a large allocation.
    """
    out = bytearray()
    rest = data
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise BodyTooLarge(f"The decompressed body is larger than {limit} bytes.")
            out += inflater.flush()
        except zlib.error as error:
            raise OtlpDecodeError(f"The body is not valid gzip: {error}") from error
        if not inflater.eof:
            raise OtlpDecodeError("The body is not valid gzip: the stream is truncated.")
        if len(out) > limit:
            raise BodyTooLarge(f"The decompressed body is larger than {limit} bytes.")
        rest = inflater.unused_data
        # Trailing zero bytes pad some gzip writers' output; they start no member.
        if not rest.strip(b"\0"):
            return bytes(out)
