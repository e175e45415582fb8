"""Ingest endpoints: OTLP/HTTP ``POST /v1/traces`` and ``POST /v1/logs``, and the JSON
batch ``POST /api/spans``.

The OTLP endpoints share one request path (``receive_export``: key, content
type, gzip, size limit, error answers) and differ only in their ``Signal``:
how the body decodes (``observability.otlp``, ``observability.otlp_logs``),
which service stores it and what the answer says.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import AnonymousUser
from django.db import DataError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import authentication, exceptions, permissions, serializers
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    parser_classes,
    permission_classes,
)
from rest_framework.request import Request
from rest_framework.response import Response

from observability import otlp, otlp_logs
from observability.choices import SpanStatus, SpanType
from observability.conventions import map_attributes
from observability.models import IngestKey
from observability.records import SpanRecord
from observability.services import authenticate_ingest_key, ingest_logs, ingest_spans
from tracescore.parsers import BoundedJSONParser
from tracescore.timebounds import OUT_OF_RANGE, iso_schema, storable_datetime

log = logging.getLogger(__name__)

# google.rpc.Code values for the Status body of protobuf error answers.
RPC_CODES = {400: 3, 401: 16, 404: 5, 405: 12, 413: 8, 415: 3, 503: 14}
MAX_BATCH_SPANS = 10_000


def bearer_secret(request: HttpRequest) -> str:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def _error(message: str, status: int, encoding: str) -> HttpResponse:
    content, content_type = otlp.status_body(message, encoding, RPC_CODES.get(status, 2))
    response = HttpResponse(content, status=status, content_type=content_type)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="tracescore ingest"'
    if status == 405:
        response["Allow"] = "POST"
    if status == 503:
        response["Retry-After"] = "1"
    return response


class Refused(Exception):
    """An export answered with an error status instead of being stored."""

    def __init__(self, status: int, message: str, encoding: str = otlp.JSON):
        super().__init__(message)
        self.status, self.message, self.encoding = status, message, encoding


@dataclass(frozen=True)
class Signal:
    """What differs between the OTLP endpoints: how an export is decoded, stored and answered."""

    noun: str  # what the export carries, for messages: "spans", "log records"
    message_name: str  # the protobuf message an export is
    decode: Callable[[bytes, str], Any]
    kept: Callable[[Any], int]  # how many items of a decoded export are to be stored
    store: Callable[[Any], object]
    respond: Callable[[Any, str], bytes]


def _store_spans(decoded: otlp.DecodedExport) -> None:
    if decoded.spans:
        ingest_spans(decoded.spans)


def _store_logs(decoded: otlp_logs.DecodedLogs) -> None:
    if decoded.records:
        ingest_logs(decoded.records)


def max_span_duration() -> timedelta:
    return timedelta(seconds=settings.TRACESCORE_INGEST_MAX_SPAN_SECONDS)


def _decode_spans(body: bytes, encoding: str) -> otlp.DecodedExport:
    return otlp.decode_export(
        body,
        encoding,
        max_span_duration=max_span_duration(),
        max_spans=settings.TRACESCORE_INGEST_MAX_SPANS_PER_EXPORT,
    )


TRACES = Signal(
    "spans",
    "ExportTraceServiceRequest",
    _decode_spans,
    lambda decoded: len(decoded.spans),
    _store_spans,
    otlp.export_response,
)
LOGS = Signal(
    "log records",
    "ExportLogsServiceRequest",
    otlp_logs.decode_logs_export,
    lambda decoded: len(decoded.records),
    _store_logs,
    otlp_logs.logs_export_response,
)


@csrf_exempt
@login_not_required
def otlp_traces(request: HttpRequest) -> HttpResponse:
    """OTLP/HTTP trace export: protobuf or JSON, optionally gzip, with an ingest key."""
    return receive_export(request, TRACES)


@csrf_exempt
@login_not_required
def otlp_logs_export(request: HttpRequest) -> HttpResponse:
    """OTLP/HTTP logs export: records with a trace id are kept, the others counted as rejected."""
    return receive_export(request, LOGS)


@csrf_exempt
@login_not_required
def otlp_unknown(request: HttpRequest, path: str | None = None) -> HttpResponse:
    """Any other ``/v1/…`` path (metrics, profiles, typos): an OTLP status body, not a page."""
    return _error(
        f"tracescore does not receive /v1{path or ''}: it takes OTLP traces at /v1/traces "
        "and logs at /v1/logs.",
        404,
        request.content_type.lower(),
    )


def receive_export(request: HttpRequest, signal: Signal) -> HttpResponse:
    """Authenticate, read, decode and store one OTLP export; answer as OTLP/HTTP asks."""
    encoding = request.content_type.lower()
    try:
        with database_unavailable_as(Refused(503, DATABASE_UNAVAILABLE, encoding)):
            if request.method != "POST":
                raise Refused(405, "Send exports with POST.", encoding)
            if authenticate_ingest_key(bearer_secret(request)) is None:
                raise Refused(
                    401,
                    "A valid ingest key is required: send 'Authorization: Bearer <key>'.",
                    encoding,
                )
            decoded = read_export(request, encoding, signal)
            store_export(signal, decoded, encoding)
    except Refused as refusal:
        return _error(refusal.message, refusal.status, refusal.encoding)
    return HttpResponse(signal.respond(decoded, encoding), content_type=encoding)


DATABASE_UNAVAILABLE = "The database is unavailable or busy; nothing was stored: retry shortly."


@contextmanager
def database_unavailable_as(refusal: Exception):
    """Turn a database that is down, unreachable or past its timeouts into ``refusal``.

    Exporters retry a 503 (and drop data on a 500), so an outage must never
    surface as a server error.
    """
    try:
        yield
    except (OperationalError, InterfaceError) as error:
        log.warning("Database unavailable during ingest: %s", error)
        raise refusal from error


def read_export(request: HttpRequest, encoding: str, signal: Signal) -> Any:
    """Check type, encoding and size, then read, inflate and decode the body."""
    if encoding not in (otlp.PROTOBUF, otlp.JSON):
        raise Refused(
            415,
            f"Unsupported content type {encoding or '(none)'!r}: "
            f"send {otlp.PROTOBUF} or {otlp.JSON}.",
        )
    compression = request.headers.get("Content-Encoding", "identity").strip().lower()
    if compression not in ("identity", "", "gzip"):
        raise Refused(415, f"Unsupported content encoding {compression!r}: use gzip.", encoding)
    limit = settings.TRACESCORE_INGEST_MAX_BODY_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refused(400, "The Content-Length header is not a number.", encoding) from None
    # Checked before reading, so an oversized body is never held in memory.
    if length > limit:
        raise Refused(413, f"The body is larger than the limit of {limit} bytes.", encoding)
    try:
        raw = request.body
        if len(raw) < length:
            raise Refused(
                400,
                f"The request announced {length} bytes but its body has {len(raw)}; "
                "nothing was stored.",
                encoding,
            )
        body = otlp.gunzip(raw, limit) if compression == "gzip" and raw else raw
        if compression == "gzip" and not raw:
            raise Refused(400, "The gzip body is empty; nothing was stored.", encoding)
        decoded = signal.decode(body, encoding)
    except (otlp.BodyTooLarge, otlp.TooManySpans) as error:
        raise Refused(413, str(error), encoding) from error
    except otlp.OtlpDecodeError as error:
        raise Refused(400, str(error), encoding) from error
    if raw and not signal.kept(decoded) and not decoded.rejected:
        # Unknown fields are skipped, so a misnamed or foreign message decodes to
        # an empty export: never acknowledge that as stored.
        raise Refused(
            400,
            f"The body ({len(raw)} bytes) holds no {signal.noun}: is it an "
            f"{signal.message_name}? Nothing was stored.",
            encoding,
        )
    return decoded


def store_export(signal: Signal, decoded: Any, encoding: str) -> None:
    try:
        signal.store(decoded)
    except DataError as error:
        # Values the database refuses (the decoders should leave none): the
        # exporter must not retry them, so this is the client's 400.
        log.warning("Refused %s: %s", signal.noun, error)
        raise Refused(400, f"The {signal.noun} could not be stored: {error}", encoding) from error


class IngestKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <ingest key>``: lets exporters use the batch API without a user."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, IngestKey] | None:
        secret = bearer_secret(request._request)
        if not secret:
            return None
        key = authenticate_ingest_key(secret)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked ingest key.")
        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="tracescore ingest"'


class IngestKeyScheme(OpenApiAuthenticationExtension):
    target_class = IngestKeyAuthentication
    name = "ingestKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An ingest key from `manage.py create_ingest_key NAME`.",
        }


class HasUserOrIngestKey(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(
            request.user and request.user.is_authenticated or isinstance(request.auth, IngestKey)
        )


HEX_ID_MESSAGE = "Must be {n} hexadecimal characters."


class StrictStringMixin:
    """Takes JSON strings only: DRF's CharField also takes numbers (0 becomes "0")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# "+", not "*": with allow_blank, drf-spectacular adds a branch for "" in a oneOf.
@extend_schema_field({"type": "string", "pattern": "^[^\\u0000]+$"})
class StrictCharField(StrictStringMixin, serializers.CharField):
    """Span text; NUL is refused (DRF's CharField does), so the schema says so."""


class StrictIntegerField(serializers.IntegerField):
    """Takes JSON integers only: DRF's IntegerField also takes "5" and 5.0."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictRegexField(StrictStringMixin, serializers.RegexField):
    pass


# Hex and not all zeros, stated without a lookahead, which makes test generation slow.
NONZERO_HEX = "^0*[1-9a-fA-F][0-9a-fA-F]*$"


class HexIdField(serializers.Field):
    """An id of ``length`` hex characters, as a JSON string (not trimmed, not a number)."""

    length = 0
    pattern = re.compile("")

    def to_internal_value(self, data):
        if not isinstance(data, str) or not self.pattern.fullmatch(data):
            raise serializers.ValidationError(HEX_ID_MESSAGE.format(n=self.length))
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "string", "pattern": NONZERO_HEX, "minLength": 32, "maxLength": 32})
class TraceIdField(HexIdField):
    """32 hex characters, not all zeros (checked in ``validate_traceId`` for its own message)."""

    length = 32
    pattern = re.compile("[0-9a-fA-F]{32}")


@extend_schema_field({"type": "string", "pattern": NONZERO_HEX, "minLength": 16, "maxLength": 16})
class SpanIdField(HexIdField):
    """16 hex characters, not all zeros (checked in ``validate_spanId``)."""

    length = 16
    pattern = re.compile("[0-9a-fA-F]{16}")


@extend_schema_field(
    iso_schema("date-time", description="An ISO 8601 datetime, in the years 1900 to 9000.")
)
class SpanTimeField(serializers.DateTimeField):
    """A span's start or end, in the years the API takes everywhere; stored in UTC."""

    def enforce_timezone(self, value):
        # Called with the datetime as written, before DRF converts it to UTC.
        try:
            storable_datetime(value)
        except (ValueError, OverflowError):
            raise serializers.ValidationError(OUT_OF_RANGE) from None
        return super().enforce_timezone(value)


class SpanInSerializer(serializers.Serializer):
    """One span in the native shape (camelCase), as the batch API takes it."""

    traceId = TraceIdField()  # noqa: N815 - API is camelCase
    spanId = SpanIdField()  # noqa: N815
    parentSpanId = StrictRegexField(  # noqa: N815
        r"^[0-9a-fA-F]{16}$",
        required=False,
        allow_null=True,
        allow_blank=True,
        error_messages={"invalid": HEX_ID_MESSAGE.format(n=16)},
    )
    name = StrictCharField(max_length=512, required=False, allow_blank=True, default="")
    spanType = serializers.ChoiceField(  # noqa: N815
        choices=SpanType.choices,
        required=False,
        help_text="Read from the attributes (see docs/ingest.md) when left out.",
    )
    startedAt = SpanTimeField()  # noqa: N815
    endedAt = SpanTimeField(required=False, allow_null=True)  # noqa: N815
    input = serializers.JSONField(required=False, allow_null=True)
    output = serializers.JSONField(required=False, allow_null=True)
    attributes = serializers.DictField(required=False, default=dict)
    resource = serializers.DictField(required=False, default=dict)
    error = StrictCharField(
        required=False, allow_null=True, allow_blank=True, help_text="Set when the span failed."
    )
    model = StrictCharField(max_length=256, required=False, allow_blank=True)
    inputTokens = StrictIntegerField(  # noqa: N815
        required=False, allow_null=True, min_value=0, max_value=2**31 - 1
    )
    outputTokens = StrictIntegerField(  # noqa: N815
        required=False, allow_null=True, min_value=0, max_value=2**31 - 1
    )

    def validate_traceId(self, value: str) -> str:  # noqa: N802
        if not value.strip("0"):
            raise serializers.ValidationError("A trace id cannot be all zeros.")
        return value.lower()

    def validate_spanId(self, value: str) -> str:  # noqa: N802
        if not value.strip("0"):
            raise serializers.ValidationError("A span id cannot be all zeros.")
        return value.lower()

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        ended = data.get("endedAt")
        if ended is not None and ended < data["startedAt"]:
            raise serializers.ValidationError({"endedAt": "Must not be before startedAt."})
        if ended is not None and ended - data["startedAt"] > max_span_duration():
            raise serializers.ValidationError(
                {
                    "endedAt": f"The span lasts longer than the maximum of {max_span_duration()} "
                    "(TRACESCORE_INGEST_MAX_SPAN_SECONDS)."
                }
            )
        return data

    @staticmethod
    def to_record(data: dict[str, Any]) -> SpanRecord:
        """The span as ingest stores it, from validated data."""
        parent = (data.get("parentSpanId") or "").lower() or None
        mapped = map_attributes(data["attributes"], is_root=parent is None)
        error = data.get("error") or ""
        model = data.get("model")
        input_tokens, output_tokens = data.get("inputTokens"), data.get("outputTokens")
        return SpanRecord(
            trace_id=data["traceId"],
            span_id=data["spanId"],
            parent_span_id=parent,
            name=data["name"] or mapped.name,
            span_type=data.get("spanType") or mapped.span_type,
            status=SpanStatus.ERROR if error else SpanStatus.OK,
            error_message=error,
            started_at=data["startedAt"],
            ended_at=data.get("endedAt"),
            input=data.get("input", mapped.input),
            output=data.get("output", mapped.output),
            attributes=data["attributes"],
            resource=data["resource"],
            model=model if model is not None else mapped.model,
            input_tokens=input_tokens if input_tokens is not None else mapped.input_tokens,
            output_tokens=output_tokens if output_tokens is not None else mapped.output_tokens,
        )


class SpanBatchSerializer(serializers.Serializer):
    spans = serializers.ListField(
        child=serializers.JSONField(), min_length=1, max_length=MAX_BATCH_SPANS
    )


REJECTED_SPAN = inline_serializer(
    "RejectedSpan",
    {
        "index": serializers.IntegerField(),
        "spanId": serializers.CharField(allow_null=True),
        "errors": serializers.DictField(),
    },
)
BATCH_RESULT = inline_serializer(
    "SpanBatchResult",
    {
        "acceptedSpans": serializers.IntegerField(),
        "rejectedSpans": serializers.IntegerField(),
        "traceIds": serializers.ListField(child=serializers.CharField()),
        "rejected": serializers.ListField(child=REJECTED_SPAN),
    },
)


DETAIL = inline_serializer("IngestError", {"detail": serializers.CharField()})
BATCH_REFUSED = {
    "type": "object",
    "description": (
        "`error` and `rejected` (each span with its errors) when no span is valid; "
        "`detail` for a body that is not JSON; the field and its messages otherwise."
    ),
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "rejected": {"type": "array", "items": {"$ref": "#/components/schemas/RejectedSpan"}},
    },
}


@extend_schema(
    request=inline_serializer(
        "SpanBatch",
        {
            "spans": serializers.ListField(
                child=SpanInSerializer(), min_length=1, max_length=MAX_BATCH_SPANS
            )
        },
    ),
    responses={
        200: OpenApiResponse(BATCH_RESULT, description="Valid spans stored; invalid ones listed."),
        400: OpenApiResponse(BATCH_REFUSED, description="Malformed batch, or no valid span in it."),
        401: OpenApiResponse(DETAIL, description="No valid user token, session or ingest key."),
        415: OpenApiResponse(DETAIL, description="The body is not application/json."),
    },
)
@api_view(["POST"])
@parser_classes([BoundedJSONParser])
@authentication_classes(
    [
        IngestKeyAuthentication,
        authentication.TokenAuthentication,
        authentication.SessionAuthentication,
    ]
)
@permission_classes([HasUserOrIngestKey])
def span_batch(request: Request) -> Response:
    """Store a JSON batch of spans in the native shape; same idempotency as OTLP ingest."""
    envelope = SpanBatchSerializer(data=request.data)
    envelope.is_valid(raise_exception=True)
    records: list[SpanRecord] = []
    rejected: list[dict[str, Any]] = []
    # One serializer validates every span: building its fields per span took
    # most of the time of a 10,000-span batch.
    span = SpanInSerializer()
    for index, item in enumerate(envelope.validated_data["spans"]):
        if not isinstance(item, dict):
            rejected.append(
                {"index": index, "spanId": None, "errors": {"span": ["Not an object."]}}
            )
            continue
        try:
            records.append(SpanInSerializer.to_record(span.run_validation(item)))
        except serializers.ValidationError as error:
            span_id = item.get("spanId") if isinstance(item.get("spanId"), str) else None
            rejected.append({"index": index, "spanId": span_id, "errors": error.detail})
    if not records:
        return Response(
            {"error": "No span in the batch is valid; nothing was stored.", "rejected": rejected},
            status=400,
        )
    result = ingest_spans(records)
    return Response(
        {
            "acceptedSpans": result.accepted_spans,
            "rejectedSpans": len(rejected),
            "traceIds": result.trace_ids,
            "rejected": rejected,
        }
    )
