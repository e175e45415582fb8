"""Plain span data, the meeting point of every way spans come in.

OTLP protobuf, OTLP/JSON, the native JSON batch API and the demo generator all
produce ``SpanRecord`` values; ``observability.services.ingest_spans`` stores
them. No ORM here, so decoders stay pure and fast to test.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Span table columns that ingest writes, in one order for every write path:
# the key (trace_id, span_id) first, then what a re-sent span may update.
SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "span_type",
    "status",
    "error_message",
    "started_at",
    "ended_at",
    "duration_ms",
    "input",
    "output",
    "attributes",
    "resource",
    "events",
    "model",
    "input_tokens",
    "output_tokens",
)


@dataclass
class SpanRecord:
    trace_id: str  # 32 lowercase hex chars
    span_id: str  # 16 lowercase hex chars
    started_at: datetime
    parent_span_id: str | None = None
    name: str = ""
    span_type: str = "generic"
    status: str = "unset"  # unset / ok / error
    error_message: str = ""
    ended_at: datetime | None = None
    input: Any = None
    output: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def duration_ms(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds() * 1000


@dataclass
class IngestResult:
    """What one ingest call stored."""

    accepted_spans: int = 0
    trace_ids: list[str] = field(default_factory=list)


# Text and JSON as the database can store them. Untrusted span content may hold
# NUL (PostgreSQL text and jsonb cannot) and lone UTF-16 surrogates (JSON
# "\ud800" without its pair: no UTF-8 form). NULs are dropped; surrogates become
# U+FFFD when ``clean`` (they are rare, so writers only clean on a retry).
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(value: str | None, clean: bool = False) -> str | None:
    if value and "\x00" in value:
        value = value.replace("\x00", "")
    return _SURROGATE.sub("\ufffd", value) if clean and value else value


def storable_json(value: object, clean: bool = False) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    if "\\u0000" in text:
        text = _JSON_NUL.sub(r"\1", text)
    return _SURROGATE.sub("\ufffd", text) if clean else text
