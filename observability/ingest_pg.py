"""The PostgreSQL path of ``observability.services.ingest_spans``.

Same result as the portable ORM path, at a fraction of the cost: the rows go in
with one ``COPY`` into a session-local staging table, one
``INSERT … SELECT … ON CONFLICT DO UPDATE`` moves them into the span table, and
one ``UPDATE … FROM`` an aggregate recomputes every touched trace. The ORM path
spends most of its time quoting kilobytes of JSON parameter by parameter in
Python and building ``CASE WHEN`` trace updates; this path does neither.

Callers hold the transaction (``ingest_spans`` is atomic).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from observability.records import SPAN_COLUMNS, SpanRecord, storable_json, storable_text

STAGING = "tracescore_span_staging"
COLUMNS = SPAN_COLUMNS
_COLUMN_LIST = ", ".join(COLUMNS)
_UPDATES = ", ".join(f"{column} = EXCLUDED.{column}" for column in (*COLUMNS[2:], "received_at"))

# ON COMMIT DELETE ROWS: the table lives as long as the (pooled) connection and
# is empty at the start of every transaction.
CREATE_STAGING = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} (
    trace_id varchar(32) NOT NULL, span_id varchar(16) NOT NULL, parent_span_id varchar(16),
    name varchar(512) NOT NULL, span_type varchar(32) NOT NULL, status varchar(8) NOT NULL,
    error_message text NOT NULL, started_at timestamptz NOT NULL, ended_at timestamptz,
    duration_ms double precision, input jsonb, output jsonb, attributes jsonb NOT NULL,
    resource jsonb NOT NULL, events jsonb NOT NULL, model varchar(256) NOT NULL,
    input_tokens integer, output_tokens integer
) ON COMMIT DELETE ROWS
"""

CREATE_TRACES = """
INSERT INTO observability_trace (
    trace_id, root_span_id, has_root, name, span_type, status, has_error, error_message,
    span_count, input_tokens, output_tokens, service_name, first_seen_at, updated_at
)
SELECT t, '', false, '', 'generic', 'unset', false, '', 0, 0, 0, '', now(), now()
FROM unnest(%s::varchar[]) AS t ORDER BY t
ON CONFLICT (trace_id) DO NOTHING
"""

# Lock the traces in a fixed order, so two requests carrying spans of one trace
# summarise it one after the other, each seeing the other's committed spans.
LOCK_TRACES = """
SELECT trace_id FROM observability_trace
WHERE trace_id = ANY(%s::varchar[]) ORDER BY trace_id FOR UPDATE
"""

# Emptying the staging table in the same statement keeps it right when several
# ingests share one transaction (ON COMMIT would only empty it at the end).
UPSERT_SPANS = f"""
WITH staged AS (DELETE FROM {STAGING} RETURNING *)
INSERT INTO observability_span ({_COLUMN_LIST}, received_at)
SELECT {_COLUMN_LIST}, now() FROM staged ORDER BY trace_id, span_id
ON CONFLICT (trace_id, span_id) DO UPDATE SET {_UPDATES}
"""

# The root is the span without a parent (the earliest if several claim it);
# until it arrives the earliest span lends the trace its name.
REFRESH_TRACES = """
UPDATE observability_trace AS t SET
    span_count = a.n,
    started_at = a.first_start,
    ended_at = a.last_end,
    duration_ms = EXTRACT(EPOCH FROM (a.last_end - a.first_start)) * 1000,
    has_error = a.errors > 0,
    error_message = COALESCE(f.message, ''),
    input_tokens = COALESCE(a.tokens_in, 0),
    output_tokens = COALESCE(a.tokens_out, 0),
    has_root = r.span_id IS NOT NULL,
    root_span_id = COALESCE(r.span_id, ''),
    name = COALESCE(r.name, e.name, ''),
    span_type = COALESCE(r.span_type, 'generic'),
    service_name = LEFT(COALESCE(COALESCE(r.resource, e.resource) ->> 'service.name', ''), 256),
    status = CASE WHEN a.errors > 0 THEN 'error'
                  WHEN r.span_id IS NOT NULL THEN 'ok' ELSE 'unset' END,
    updated_at = now()
FROM (
    SELECT trace_id, count(*) AS n, min(started_at) AS first_start, max(ended_at) AS last_end,
           count(*) FILTER (WHERE status = 'error') AS errors,
           sum(input_tokens) AS tokens_in, sum(output_tokens) AS tokens_out
    FROM observability_span WHERE trace_id = ANY(%s::varchar[]) GROUP BY trace_id
) AS a
LEFT JOIN LATERAL (
    SELECT span_id, name, span_type, resource FROM observability_span AS s
    WHERE s.trace_id = a.trace_id AND s.parent_span_id IS NULL
    ORDER BY started_at, span_id LIMIT 1
) AS r ON true
LEFT JOIN LATERAL (
    SELECT name, resource FROM observability_span AS s
    WHERE s.trace_id = a.trace_id ORDER BY started_at, span_id LIMIT 1
) AS e ON true
LEFT JOIN LATERAL (
    SELECT COALESCE(NULLIF(error_message, ''), name || ' failed') AS message
    FROM observability_span AS s
    WHERE s.trace_id = a.trace_id AND s.status = 'error'
    ORDER BY started_at, span_id LIMIT 1
) AS f ON true
WHERE t.trace_id = a.trace_id
"""


def _row(r: SpanRecord, clean: bool = False) -> tuple:
    """One COPY row; ``clean`` replaces lone surrogates (rare, so only on a retry)."""
    return (
        r.trace_id,
        r.span_id,
        r.parent_span_id or None,
        storable_text(r.name, clean),
        r.span_type,
        r.status,
        storable_text(r.error_message, clean),
        r.started_at,
        r.ended_at,
        r.duration_ms,
        None if r.input is None else storable_json(r.input, clean),
        None if r.output is None else storable_json(r.output, clean),
        storable_json(r.attributes, clean),
        storable_json(r.resource, clean),
        storable_json(r.events, clean),
        storable_text(r.model, clean),
        r.input_tokens,
        r.output_tokens,
    )


def store_spans(records: Sequence[SpanRecord], trace_ids: list[str]) -> None:
    """Upsert these (deduplicated) spans and refresh their traces, in seven statements."""
    with connection.cursor() as cursor:
        cursor.execute(CREATE_STAGING)
        with cursor.cursor.copy(f"COPY {STAGING} ({_COLUMN_LIST}) FROM STDIN") as copy:
            for record in records:
                try:
                    copy.write_row(_row(record))
                except UnicodeEncodeError:
                    copy.write_row(_row(record, clean=True))
        cursor.execute(CREATE_TRACES, [trace_ids])
        cursor.execute(LOCK_TRACES, [trace_ids])
        cursor.execute(UPSERT_SPANS)
        cursor.execute(REFRESH_TRACES, [trace_ids])
