"""Build realistic traces for tests through the real ingest service."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from observability.models import Trace
from observability.records import SpanRecord
from observability.services import ingest_spans

_ids = itertools.count(1)


def new_trace_id() -> str:
    return f"{next(_ids):032x}"


def new_span_id() -> str:
    return f"{next(_ids):016x}"


def span(trace_id: str, **fields: Any) -> SpanRecord:
    fields.setdefault("span_id", new_span_id())
    fields.setdefault("started_at", timezone.now())
    fields.setdefault("ended_at", fields["started_at"] + timedelta(milliseconds=100))
    return SpanRecord(trace_id=trace_id, **fields)


def agent_trace(
    *,
    question: str = "Where is my order 1042?",
    answer: str = "Your order 1042 shipped yesterday and arrives Friday.",
    name: str = "support-agent",
    started_at: datetime | None = None,
    tool_error: str = "",
    metadata: dict[str, Any] | None = None,
    trace_id: str | None = None,
) -> Trace:
    """An agent run: root agent span, an LLM call, a tool call, a final LLM answer."""
    trace_id = trace_id or new_trace_id()
    start = started_at or timezone.now() - timedelta(minutes=5)
    root_id = new_span_id()
    ms = timedelta(milliseconds=1)
    records = [
        span(
            trace_id,
            span_id=root_id,
            name=name,
            span_type="agent_run",
            status="ok",
            started_at=start,
            ended_at=start + 2400 * ms,
            input=question,
            output=answer,
            attributes={"metadata": metadata or {}},
            resource={"service.name": "shop-support"},
        ),
        span(
            trace_id,
            parent_span_id=root_id,
            name="chat gpt-4o-mini",
            span_type="llm_generation",
            status="ok",
            started_at=start + 10 * ms,
            ended_at=start + 900 * ms,
            input=[
                {"role": "system", "content": "You are a helpful support agent."},
                {"role": "user", "content": question},
            ],
            output=[{"role": "assistant", "content": "Let me look up that order."}],
            model="gpt-4o-mini",
            input_tokens=120,
            output_tokens=18,
        ),
        span(
            trace_id,
            parent_span_id=root_id,
            name="lookup_order",
            span_type="tool_call",
            status="error" if tool_error else "ok",
            error_message=tool_error,
            started_at=start + 950 * ms,
            ended_at=start + 1300 * ms,
            input={"order_id": "1042"},
            output=None if tool_error else {"status": "shipped", "eta": "Friday"},
        ),
        span(
            trace_id,
            parent_span_id=root_id,
            name="chat gpt-4o-mini",
            span_type="llm_generation",
            status="ok",
            started_at=start + 1350 * ms,
            ended_at=start + 2350 * ms,
            input=[{"role": "user", "content": question}],
            output=[{"role": "assistant", "content": answer}],
            model="gpt-4o-mini",
            input_tokens=210,
            output_tokens=32,
        ),
    ]
    ingest_spans(records)
    return Trace.objects.get(trace_id=trace_id)


def chain_trace(depth: int, *, started_at: datetime | None = None) -> Trace:
    """A trace whose spans form one parent chain ``depth`` spans deep (root first)."""
    trace_id = new_trace_id()
    start = started_at or timezone.now() - timedelta(minutes=5)
    us = timedelta(microseconds=1)
    ids = [new_span_id() for _ in range(depth)]
    ingest_spans(
        [
            span(
                trace_id,
                span_id=span_id,
                parent_span_id=ids[level - 1] if level else None,
                name=f"level {level}",
                status="ok",
                started_at=start + level * us,
                ended_at=start + (2 * depth - level) * us,
                input={"level": level},
            )
            for level, span_id in enumerate(ids)
        ]
    )
    return Trace.objects.get(trace_id=trace_id)


def wide_trace(children: int, *, started_at: datetime | None = None) -> Trace:
    """A root span with ``children`` child spans, named "step 0", "step 1"… in start order."""
    trace_id = new_trace_id()
    start = started_at or timezone.now() - timedelta(minutes=5)
    ms = timedelta(milliseconds=1)
    root_id = new_span_id()
    root = span(
        trace_id,
        span_id=root_id,
        name="wide-root",
        span_type="agent_run",
        status="ok",
        started_at=start,
        ended_at=start + (children + 10) * ms,
        input="the question",
    )
    steps = [
        span(
            trace_id,
            parent_span_id=root_id,
            name=f"step {n}",
            span_type="tool_call",
            status="ok",
            started_at=start + (n + 1) * ms,
            ended_at=start + (n + 2) * ms,
            input={"step": n},
        )
        for n in range(children)
    ]
    ingest_spans([root, *steps])
    return Trace.objects.get(trace_id=trace_id)


def any_value(value: Any):
    """A Python value as an OTLP AnyValue (dicts become kvlists, lists arrays)."""
    from opentelemetry.proto.common.v1.common_pb2 import (
        AnyValue,
        ArrayValue,
        KeyValue,
        KeyValueList,
    )

    if isinstance(value, dict):
        pairs = [KeyValue(key=k, value=any_value(v)) for k, v in value.items()]
        return AnyValue(kvlist_value=KeyValueList(values=pairs))
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def add_log(
    trace_id: str,
    span_id: str = "",
    body: Any = "Looking up order 1042",
    *,
    severity_number: int = 9,
    severity_text: str = "INFO",
    attributes: dict[str, str] | None = None,
    at: datetime | None = None,
) -> None:
    """A log record as OTLP ingest stores it: built as OTLP, decoded, stored by the service."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as OtlpLogRecord

    from observability.otlp_logs import log_record
    from observability.services import ingest_logs

    at = at or timezone.now()
    record = OtlpLogRecord(
        time_unix_nano=(at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000,
        severity_number=severity_number,
        severity_text=severity_text,
        body=any_value(body),
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(span_id),
        attributes=[
            KeyValue(key=key, value=AnyValue(string_value=value))
            for key, value in (attributes or {}).items()
        ],
    )
    ingest_logs([log_record(record, {"service.name": "shop-support"}, "support-agent")])


# Span content that would run script if a page ever rendered it unescaped.
EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def make_score(trace, scorer_id="completeness", score=0.8, status="succeeded", **fields):
    """A Score row as a worker would leave it (no batch unless given)."""
    from scoring.models import Score

    return Score.objects.create(
        trace=trace,
        scorer_id=scorer_id,
        scorer_name=scorer_id.title(),
        score=score,
        status=status,
        **fields,
    )
