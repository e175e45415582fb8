"""Decode OTLP log exports (protobuf and OTLP/JSON) into ``LogRecordData`` values.

Pure functions, no ORM, sharing the value, id and parsing helpers of
``observability.otlp``. tracescore keeps a log record only when it carries a
trace id, so it can be shown in its span's panel: the others are counted as
rejected with a reason, and the export's answer says so in
``partial_success``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as OtlpLogRecord

from observability import otlp
from observability.records import LogRecordData

NO_TRACE_ID = "log records without a trace id are not kept (tracescore shows logs on their trace)"


class RejectedLog(ValueError):
    """One log record that cannot be stored; the message says why."""


@dataclass
class DecodedLogs:
    """The log records of one export request, and how many were rejected and why."""

    records: list[LogRecordData] = field(default_factory=list)
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # reason → how many records

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if reason in self.reasons or len(self.reasons) < otlp.MAX_REASONS:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1

    @property
    def message(self) -> str:
        # Reasons are counted rather than listed one per record: in a log
        # export, thousands of records are typically rejected for one reason.
        if not self.rejected:
            return ""
        text = f"{self.rejected} log record(s) rejected: " + "; ".join(
            f"{count} × {reason}" if count > 1 else reason for reason, count in self.reasons.items()
        )
        more = self.rejected - sum(self.reasons.values())
        return text + (f"; and {more} more" if more > 0 else "")


def decode_logs_export(body: bytes, content_type: str) -> DecodedLogs:
    """Decode a logs export body in ``content_type`` (protobuf or JSON) into log records."""
    if content_type == otlp.JSON:
        request = otlp.message_from_json(
            body, ExportLogsServiceRequest, _hex_ids_to_base64, "resourceLogs"
        )
    else:
        request = otlp.message_from_protobuf(body, ExportLogsServiceRequest)
    return records_from_logs_request(request)


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    for resource_logs in otlp._dicts(document.get("resourceLogs", document.get("resource_logs"))):
        for scope_logs in otlp._dicts(
            resource_logs.get("scopeLogs", resource_logs.get("scope_logs"))
        ):
            for record in otlp._dicts(scope_logs.get("logRecords", scope_logs.get("log_records"))):
                otlp._convert_ids(record)


def records_from_logs_request(request: ExportLogsServiceRequest) -> DecodedLogs:
    """Turn every log record that carries a trace id into a LogRecordData."""
    decoded = DecodedLogs()
    for resource_logs in request.resource_logs:
        resource = without_nul(otlp.key_values(resource_logs.resource.attributes))
        for scope_logs in resource_logs.scope_logs:
            scope_name = without_nul(scope_logs.scope.name)[:256]
            for record in scope_logs.log_records:
                try:
                    decoded.records.append(log_record(record, resource, scope_name))
                except RejectedLog as reason:
                    decoded.reject(str(reason))
    return decoded


def log_record(record: OtlpLogRecord, resource: dict[str, Any], scope_name: str) -> LogRecordData:
    """Map one OTLP log record (raises RejectedLog when it has no usable trace id)."""
    trace_id = _trace_id(record.trace_id)
    span_id = _span_id(record.span_id)
    time = _time(record.time_unix_nano) or _time(record.observed_time_unix_nano)
    values = LogRecordData(
        trace_id=trace_id,
        span_id=span_id,
        record_hash="",
        time=time,
        observed_at=_time(record.observed_time_unix_nano),
        severity_number=record.severity_number if 0 <= record.severity_number <= 24 else 0,
        severity_text=without_nul(record.severity_text)[:64],
        event_name=without_nul(record.event_name)[:256],
        body=without_nul(otlp.any_value(record.body)) if record.HasField("body") else None,
        attributes=without_nul(otlp.key_values(record.attributes)),
        resource=resource,
        scope_name=scope_name,
    )
    values.record_hash = _digest(values, record.time_unix_nano, record.observed_time_unix_nano)
    return values


def _trace_id(raw: bytes) -> str:
    if not raw or not any(raw):
        raise RejectedLog(NO_TRACE_ID)
    if len(raw) != 16:
        raise RejectedLog(f"malformed trace id ({len(raw)} bytes, expected 16)")
    return raw.hex()


def _span_id(raw: bytes) -> str:
    if not raw or not any(raw):
        return ""
    if len(raw) != 8:
        raise RejectedLog(f"malformed span id ({len(raw)} bytes, expected 8)")
    return raw.hex()


def _time(nanos: int) -> datetime | None:
    if not nanos:
        return None
    try:
        return otlp.EPOCH + timedelta(microseconds=nanos // 1000)
    except OverflowError:
        raise RejectedLog("timestamp out of range") from None


def _digest(values: LogRecordData, time_nanos: int, observed_nanos: int) -> str:
    # The raw nanoseconds, not the stored microseconds: two records a few
    # nanoseconds apart are two records.
    identity = [
        values.trace_id,
        values.span_id,
        time_nanos,
        observed_nanos,
        values.severity_number,
        values.severity_text,
        values.event_name,
        values.body,
        values.attributes,
        values.resource,
        values.scope_name,
    ]
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def without_nul(value: Any) -> Any:
    """The value without NUL characters, which PostgreSQL text and jsonb cannot hold."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    return value


def logs_export_response(decoded: DecodedLogs, content_type: str) -> bytes:
    """The ExportLogsServiceResponse for this export, in the request's encoding."""
    response = ExportLogsServiceResponse()
    if decoded.rejected:
        response.partial_success.rejected_log_records = decoded.rejected
        response.partial_success.error_message = decoded.message
    if content_type == otlp.JSON:
        return json.dumps(json_format.MessageToDict(response)).encode()
    return response.SerializeToString()
