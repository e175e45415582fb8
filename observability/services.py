"""Every write to traces, spans and logs goes through here."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from observability import ingest_pg
from observability.choices import SpanStatus, SpanType
from observability.extensions import notify_ingest
from observability.models import IngestKey, LogRecord, Span, Trace
from observability.records import (
    SPAN_COLUMNS,
    IngestResult,
    LogRecordData,
    SpanRecord,
    storable_json,
    storable_text,
)

SPAN_UPDATE_FIELDS = [*SPAN_COLUMNS[2:], "received_at"]

INGEST_KEY_PREFIX = "tsk_"

TRACE_SUMMARY_FIELDS = [
    "root_span_id",
    "has_root",
    "name",
    "span_type",
    "status",
    "has_error",
    "error_message",
    "started_at",
    "ended_at",
    "duration_ms",
    "span_count",
    "input_tokens",
    "output_tokens",
    "service_name",
    "updated_at",
]


def _span_from_record(record: SpanRecord) -> Span:
    return Span(
        trace_id=record.trace_id,
        span_id=record.span_id,
        parent_span_id=record.parent_span_id or None,
        name=record.name,
        span_type=record.span_type,
        status=record.status,
        error_message=record.error_message,
        started_at=record.started_at,
        ended_at=record.ended_at,
        duration_ms=record.duration_ms,
        input=record.input,
        output=record.output,
        attributes=record.attributes,
        resource=record.resource,
        events=record.events,
        model=record.model,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
    )


@transaction.atomic
def ingest_spans(records: Iterable[SpanRecord]) -> IngestResult:
    """Store spans idempotently and bring their Trace rows up to date.

    Sending the same spans twice changes nothing; a re-sent span with new data
    replaces the old. Spans of one trace may come in any order and in several
    calls. The query count does not grow with the number of spans. PostgreSQL
    takes a COPY-based path (``observability.ingest_pg``), other databases the ORM.
    """
    # Last copy wins when a request repeats a span.
    unique = {(r.trace_id, r.span_id): r for r in records}
    if not unique:
        return IngestResult()
    trace_ids = sorted({trace_id for trace_id, _ in unique})
    if connection.vendor == "postgresql":
        ingest_pg.store_spans([unique[key] for key in sorted(unique)], trace_ids)
    else:
        _store_spans_orm(unique, trace_ids)
    # Other apps (live scoring) learn which traces got spans once they are committed.
    transaction.on_commit(lambda: notify_ingest(trace_ids))
    return IngestResult(accepted_spans=len(unique), trace_ids=trace_ids)


def _store_spans_orm(unique: dict[tuple[str, str], SpanRecord], trace_ids: list[str]) -> None:
    """The portable path (SQLite): bulk upserts through the ORM, then a summary refresh."""
    # Create missing Trace rows, then lock them in a fixed order: two requests
    # carrying spans of one trace then summarise it one after the other, each
    # seeing the other's committed spans.
    _create_missing_traces(trace_ids)
    list(
        Trace.objects.select_for_update()
        .filter(trace_id__in=trace_ids)
        .order_by("trace_id")
        .values_list("trace_id", flat=True)
    )
    records = [unique[key] for key in sorted(unique)]
    if connection.vendor == "sqlite":
        _upsert_spans_sqlite(records)
    else:
        Span.objects.bulk_create(
            [_span_from_record(record) for record in records],
            update_conflicts=True,
            unique_fields=["trace", "span_id"],
            update_fields=SPAN_UPDATE_FIELDS,
        )
    refresh_traces(trace_ids)


def _upsert_spans_sqlite(records: list[SpanRecord]) -> None:
    # One executemany instead of bulk_create, whose batches on SQLite are capped
    # at 999 parameters (52 spans): a query per 52 spans, and slower.
    columns = ["trace_id", "span_id", *SPAN_UPDATE_FIELDS]
    updates = ", ".join(f"{c} = excluded.{c}" for c in SPAN_UPDATE_FIELDS)
    sql = (
        f"INSERT INTO {Span._meta.db_table} ({', '.join(columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT (trace_id, span_id) DO UPDATE SET {updates}"
    )
    to_db = connection.ops.adapt_datetimefield_value
    now = to_db(timezone.now())
    rows = [
        (
            r.trace_id,
            r.span_id,
            r.parent_span_id or None,
            storable_text(r.name, clean=True),
            r.span_type,
            r.status,
            storable_text(r.error_message, clean=True),
            to_db(r.started_at),
            to_db(r.ended_at),
            r.duration_ms,
            None if r.input is None else storable_json(r.input, clean=True),
            None if r.output is None else storable_json(r.output, clean=True),
            storable_json(r.attributes, clean=True),
            storable_json(r.resource, clean=True),
            storable_json(r.events, clean=True),
            storable_text(r.model, clean=True),
            r.input_tokens,
            r.output_tokens,
            now,
        )
        for r in records
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def refresh_traces(trace_ids: list[str]) -> None:
    """Recompute the summary columns of these traces from their spans.

    Token totals add up the LLM generations; agent spans repeat their steps'
    usage (the GenAI conventions recommend it), so spans of other types count
    only in a trace that has no generation with tokens.
    """
    spans = Span.objects.filter(trace_id__in=trace_ids)
    stats = {
        row["trace_id"]: row
        for row in spans.values("trace_id").annotate(
            count=Count("id"),
            first_start=Min("started_at"),
            last_end=Max("ended_at"),
            errors=Count("id", filter=Q(status=SpanStatus.ERROR)),
            tokens_in=Coalesce(
                Sum("input_tokens", filter=Q(span_type=SpanType.LLM_GENERATION)),
                Sum("input_tokens"),
            ),
            tokens_out=Coalesce(
                Sum("output_tokens", filter=Q(span_type=SpanType.LLM_GENERATION)),
                Sum("output_tokens"),
            ),
        )
    }
    # The root is the span without a parent; if several claim it, the earliest wins.
    roots: dict[str, dict] = {}
    for row in (
        spans.filter(parent_span_id__isnull=True)
        .order_by("started_at", "span_id")
        .values("trace_id", "span_id", "name", "span_type", "error_message", "resource")
    ):
        roots.setdefault(row["trace_id"], row)
    first_errors: dict[str, str] = {}
    for row in (
        spans.filter(status=SpanStatus.ERROR)
        .order_by("started_at", "span_id")
        .values("trace_id", "error_message", "name")
    ):
        first_errors.setdefault(row["trace_id"], row["error_message"] or f"{row['name']} failed")
    earliest: dict[str, dict] = {}
    for row in (
        spans.filter(trace_id__in=[t for t in trace_ids if t not in roots])
        .order_by("started_at", "span_id")
        .values("trace_id", "name", "resource")
    ):
        earliest.setdefault(row["trace_id"], row)

    now = timezone.now()
    traces = list(Trace.objects.filter(trace_id__in=trace_ids))
    for trace in traces:
        row = stats.get(trace.trace_id)
        root = roots.get(trace.trace_id)
        stand_in = root or earliest.get(trace.trace_id) or {}
        trace.has_root = root is not None
        trace.root_span_id = root["span_id"] if root else ""
        trace.name = stand_in.get("name", "")
        trace.span_type = root["span_type"] if root else SpanType.GENERIC
        trace.service_name = str((stand_in.get("resource") or {}).get("service.name", ""))[:256]
        trace.span_count = row["count"] if row else 0
        trace.started_at = row["first_start"] if row else None
        trace.ended_at = row["last_end"] if row else None
        trace.duration_ms = (
            (trace.ended_at - trace.started_at).total_seconds() * 1000
            if trace.started_at and trace.ended_at
            else None
        )
        trace.has_error = bool(row and row["errors"])
        trace.error_message = first_errors.get(trace.trace_id, "")
        trace.status = (
            SpanStatus.ERROR if trace.has_error else SpanStatus.OK if root else SpanStatus.UNSET
        )
        trace.input_tokens = (row and row["tokens_in"]) or 0
        trace.output_tokens = (row and row["tokens_out"]) or 0
        trace.updated_at = now
    _save_trace_summaries(traces)


def _create_missing_traces(trace_ids: list[str]) -> None:
    if connection.vendor != "sqlite":
        Trace.objects.bulk_create([Trace(trace_id=t) for t in trace_ids], ignore_conflicts=True)
        return
    # executemany: one statement however many traces (bulk_create batches by 999 parameters).
    fields = [f for f in Trace._meta.concrete_fields]
    now = timezone.now()
    rows = []
    for trace_id in trace_ids:
        trace = Trace(trace_id=trace_id, first_seen_at=now, updated_at=now)
        rows.append([f.get_db_prep_save(getattr(trace, f.attname), connection) for f in fields])
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {Trace._meta.db_table} ({', '.join(f.column for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT (trace_id) DO NOTHING",
            rows,
        )


def _save_trace_summaries(traces: list[Trace]) -> None:
    # One executemany UPDATE rather than bulk_update's CASE WHEN batches.
    fields = [Trace._meta.get_field(name) for name in TRACE_SUMMARY_FIELDS]
    rows = [
        [f.get_db_prep_save(getattr(trace, f.attname), connection) for f in fields]
        + [trace.trace_id]
        for trace in traces
    ]
    assignments = ", ".join(f"{f.column} = %s" for f in fields)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {Trace._meta.db_table} SET {assignments} WHERE trace_id = %s", rows
        )


LOG_COLUMNS = [
    "trace_id",
    "span_id",
    "time",
    "observed_at",
    "severity_number",
    "severity_text",
    "event_name",
    "body",
    "attributes",
    "resource",
    "scope_name",
    "record_hash",
    "received_at",
]


@transaction.atomic
def ingest_logs(records: Iterable[LogRecordData]) -> int:
    """Store log records that carry a trace id; returns how many were new.

    A record already stored (same ``record_hash``: an exporter retrying an
    export) is skipped, so retries store nothing twice. The Trace row is not
    created here: logs show on their trace once its spans arrive. One INSERT
    statement whatever the number of records.
    """
    unique = {record.record_hash: record for record in records}
    if not unique:
        return 0
    now = timezone.now()
    fields = [LogRecord._meta.get_field(name) for name in LOG_COLUMNS]
    rows = []
    for digest in sorted(unique):  # a fixed order, so concurrent exports never deadlock
        values = unique[digest]
        log = LogRecord(
            trace_id=values.trace_id,
            span_id=values.span_id,
            time=values.time or now,
            observed_at=values.observed_at,
            severity_number=values.severity_number,
            severity_text=values.severity_text,
            event_name=values.event_name,
            body=values.body,
            attributes=values.attributes,
            resource=values.resource,
            scope_name=values.scope_name,
            record_hash=digest,
            received_at=now,
        )
        rows.append([f.get_db_prep_save(getattr(log, f.attname), connection) for f in fields])
    with connection.cursor() as cursor:
        # executemany: one statement for any number of rows on every database
        # (bulk_create splits SQLite batches at 999 parameters).
        cursor.executemany(
            f"INSERT INTO {LogRecord._meta.db_table} ({', '.join(f.column for f in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT (record_hash) DO NOTHING",
            rows,
        )
        return max(cursor.rowcount, 0)


def create_ingest_key(*, name: str) -> tuple[IngestKey, str]:
    """Create an ingest key; returns it with the secret, which is shown only now."""
    secret = INGEST_KEY_PREFIX + secrets.token_urlsafe(32)
    key = IngestKey.objects.create(
        name=name, prefix=secret[:12], hashed_secret=hash_ingest_secret(secret)
    )
    return key, secret


def hash_ingest_secret(secret: str) -> str:
    # The secret has 256 random bits, so a fast hash is safe and lets every
    # ingest request look its key up by an indexed equality.
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def revoke_ingest_key(*, key: IngestKey) -> IngestKey:
    """Revoke a key: exporters using it get 401 from their next request on."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


# last_used_at is written at most this often per key, so busy exporters do not
# turn every export into an extra UPDATE.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate_ingest_key(secret: str) -> IngestKey | None:
    """The active ingest key with this secret, or None; notes when it was last used."""
    if not secret or not secret.startswith(INGEST_KEY_PREFIX) or len(secret) > 256:
        return None
    key = IngestKey.objects.filter(
        hashed_secret=hash_ingest_secret(secret), revoked_at__isnull=True
    ).first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        IngestKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def refresh_planner_statistics() -> None:
    """ANALYZE the span and trace tables (PostgreSQL), e.g. during a bulk load."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE observability_span, observability_trace")
