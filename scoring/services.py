"""Every write of the scoring app: starting batches, recording scores, recovering lost work.

A batch creates one ``pending`` Score per known trace in the same transaction
as the batch itself, then (on commit) queues its django-q2 tasks.

Tasks take Scores in chunks of ``TRACESCORE_SCORE_CHUNK`` (``enqueue_scores``).
A task first *claims* its chunk (``claim_scores``): one conditional UPDATE
that takes each pending, unleased Score of the chunk for exactly one worker
run, counts an attempt and gives it a lease of ``TRACESCORE_SCORE_LEASE``
seconds, longer than a task may run before django-q2 kills it. Only the
holder of the claim records an outcome (``record_scores``, many Scores in a
few statements), so a Score is scored once, and a judge called once, however
many times its task is in the broker. A worker that dies loses its chunk's
claims until their leases run out; then the sweep queues them again.

``requeue_stale_scores`` (every minute) recovers lost work without ever
failing a Score for waiting its turn:

- a Score whose lease expired was started by a worker that died or was killed:
  it is queued again, and failed with a message saying so once workers have
  started it ``TRACESCORE_TASK_MAX_ATTEMPTS`` times;
- a Score no worker has started is queued again only when the broker has no
  task waiting and the Score was queued more than ``TRACESCORE_STALE_AFTER``
  seconds ago. Its task may be lost (a cluster died holding it in memory, the
  process that queued it died), or only be about to run: the two cannot be
  told apart, so the Score is never failed, and the claim makes the spare
  task a no-op if the first one turns up.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import socket
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task
from redis.exceptions import RedisError

from observability.choices import SpanType
from observability.models import Span, Trace
from scoring.choices import ScopeType, ScoreSource, ScoreStatus
from scoring.costs import (  # noqa: F401 - the runners call services.pre_run_skip_reason
    BatchEstimate,
    estimate_batch,
    pre_run_skip_reason,
)
from scoring.models import Score, ScoringBatch
from scoring.scorers import registry
from scoring.scorers.base import Scorer

log = logging.getLogger(__name__)

MAX_BATCH_TRACES = 10_000
MAX_BATCH_TARGETS = 50_000
MAX_BATCH_SCORES = 50_000
MAX_BATCH_SCORERS = 20
# Batches up to this size queue their tasks straight from the request; larger
# ones hand the queueing to one task, so the request answers at once.
DIRECT_ENQUEUE_LIMIT = 50
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
SCORE_TASK = "scoring.tasks.score_chunk"
# Rows per INSERT … SELECT / lookup statement, well under every database's
# limit on query parameters.
CHUNK = 5_000


class BatchError(Exception):
    """A batch request that cannot start; the message is for a person."""

    status_code = 400


class UnknownScorerError(BatchError):
    status_code = 404


class InvalidBatchError(BatchError):
    status_code = 400


class NoKnownTracesError(BatchError):
    status_code = 404


class QueueUnavailableError(BatchError):
    """The task queue could not take the batch's tasks; the batch was removed again."""

    status_code = 503


QUEUE_UNAVAILABLE = (
    "The task queue is unavailable, so scoring could not start; nothing was created. "
    "Try again shortly."
)
# What queueing raises when the broker is away: Redis errors, socket errors, and
# database errors for django-q2's ORM broker.
BROKER_ERRORS = (RedisError, OSError, DatabaseError)


def _clean_trace_ids(trace_ids: Any) -> list[str]:
    if not isinstance(trace_ids, list) or not trace_ids:
        raise InvalidBatchError("traceIds must be a non-empty list of trace ids.")
    if len(trace_ids) > MAX_BATCH_TRACES:
        raise InvalidBatchError(
            f"A batch takes at most {MAX_BATCH_TRACES:,} traces; got {len(trace_ids):,}."
        )
    cleaned: dict[str, None] = {}
    malformed = []
    for value in trace_ids:
        trace_id = value.strip().lower() if isinstance(value, str) else ""
        if TRACE_ID.match(trace_id):
            cleaned.setdefault(trace_id, None)
        else:
            malformed.append(value)
    if malformed:
        shown = ", ".join(repr(v) for v in malformed[:5])
        raise InvalidBatchError(
            f"{len(malformed)} trace id(s) are not 32 hexadecimal characters: {shown}."
        )
    return list(cleaned)


def _clean_targets(targets: Any) -> list[tuple[str, str]]:
    """(trace id, span id or "" for the root) pairs, repeats once, in order."""
    if not isinstance(targets, list) or not targets:
        raise InvalidBatchError("targets must be a non-empty list of {traceId, spanId} objects.")
    if len(targets) > MAX_BATCH_TARGETS:
        raise InvalidBatchError(
            f"A batch takes at most {MAX_BATCH_TARGETS:,} targets; got {len(targets):,}."
        )
    cleaned: dict[tuple[str, str], None] = {}
    malformed = []
    for value in targets:
        trace_id = value.get("traceId") if isinstance(value, dict) else None
        span_id = value.get("spanId") if isinstance(value, dict) else None
        trace_id = trace_id.strip().lower() if isinstance(trace_id, str) else ""
        span_id = span_id.strip().lower() if isinstance(span_id, str) else span_id
        if TRACE_ID.match(trace_id) and (span_id in (None, "") or SPAN_ID.match(span_id)):
            cleaned.setdefault((trace_id, span_id or ""), None)
        else:
            malformed.append(value)
    if malformed:
        shown = ", ".join(repr(v) for v in malformed[:3])
        raise InvalidBatchError(
            f"{len(malformed)} target(s) are not a traceId of 32 and an optional spanId of "
            f"16 hexadecimal characters: {shown}."
        )
    if len({trace_id for trace_id, _ in cleaned}) > MAX_BATCH_TRACES:
        raise InvalidBatchError(f"A batch takes targets in at most {MAX_BATCH_TRACES:,} traces.")
    return list(cleaned)


def clean_max_cost(value: Any) -> float | None:
    """A batch's cost cap: a positive, finite number of US dollars, or None for no cap."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        value = "not a number"
    try:
        cap = float(value)
    except (TypeError, ValueError):
        cap = None
    if cap is None or not math.isfinite(cap) or cap <= 0:
        raise InvalidBatchError(
            f"maxCostUsd must be a positive number of US dollars (such as 5 or 0.25); got "
            f"{value!r}."
        )
    return cap


def _scorers(scorer_ids: Any) -> list[Scorer]:
    if isinstance(scorer_ids, str):
        scorer_ids = [scorer_ids]
    if not isinstance(scorer_ids, list) or not scorer_ids:
        raise InvalidBatchError("Give scorerId, or scorerIds: a non-empty list of scorer ids.")
    if len(scorer_ids) > MAX_BATCH_SCORERS:
        raise InvalidBatchError(
            f"A batch takes at most {MAX_BATCH_SCORERS} scorers; got {len(scorer_ids)}."
        )
    scorers: dict[str, Scorer] = {}
    for scorer_id in scorer_ids:
        try:
            scorer = registry.get(scorer_id)
        except (registry.UnknownScorer, TypeError):
            raise UnknownScorerError(f"No scorer with id {scorer_id!r}.") from None
        available, why = scorer.availability()
        if not available:
            raise InvalidBatchError(f"Scorer {scorer_id!r} is unavailable: {why}")
        scorers.setdefault(scorer.id, scorer)
    return list(scorers.values())


@dataclass
class BatchPlan:
    """What a batch request would score: its scorers × its target spans.

    ``span_pks`` are the target spans' rows (span scope); trace scope targets
    each known trace's root. ``type_counts`` counts targets per span type, so
    each scorer's skips are known before anything runs.
    """

    scorers: list[Scorer]
    scope_type: str
    span_type: str
    trace_ids: list[str]
    unknown_trace_ids: list[str]
    unknown_targets: list[dict[str, str]]
    target_count: int
    type_counts: dict[str, int]
    span_pks: list[int] = field(default_factory=list)

    @property
    def score_count(self) -> int:
        return self.target_count * len(self.scorers)

    def skip_count(self, scorer: Scorer) -> int:
        """Targets this scorer will skip: spans of a type it does not apply to.

        Whole-trace scoring scores the root for the whole trace, which every
        scorer applies to.
        """
        if self.scope_type != ScopeType.SPAN:
            return 0
        return sum(n for kind, n in self.type_counts.items() if not scorer.applies_to(kind))

    def per_scorer(self) -> list[dict[str, Any]]:
        return [
            {
                "scorer": scorer,
                "score_count": self.target_count,
                "skip_count": self.skip_count(scorer),
            }
            for scorer in self.scorers
        ]


def plan_batch(
    *,
    scorer_ids: Any,
    trace_ids: Any = None,
    targets: Any = None,
    scope_type: str = ScopeType.TRACE,
    span_type: str = "",
) -> BatchPlan:
    """Check a batch request and resolve its targets, without writing anything.

    Request forms: trace scope with ``trace_ids`` (each trace's root span);
    span scope with ``targets`` (exactly those spans, a missing span id meaning
    the root), or with ``trace_ids`` and ``span_type`` (every span of that
    type in those traces). Raises a ``BatchError`` subclass that says what is
    wrong.
    """
    if scope_type not in ScopeType.values:
        raise InvalidBatchError(
            f"scopeType must be 'trace' (the root span of each trace) or 'span'; got "
            f"{scope_type!r}."
        )
    scorers = _scorers(scorer_ids)
    asked = len(targets) if isinstance(targets, list) else 0
    if scope_type == ScopeType.TRACE and isinstance(trace_ids, list):
        asked = len(trace_ids)
    within = asked <= (MAX_BATCH_TRACES if scope_type == ScopeType.TRACE else MAX_BATCH_TARGETS)
    if within and asked * len(scorers) > MAX_BATCH_SCORES:  # refused before any read
        raise InvalidBatchError(
            f"A batch makes at most {MAX_BATCH_SCORES:,} scores; this one asks for "
            f"{asked * len(scorers):,} ({asked:,} targets × {len(scorers)} scorers)."
        )
    if scope_type == ScopeType.TRACE:
        if targets is not None:
            raise InvalidBatchError("targets need scopeType 'span'.")
        if span_type:
            raise InvalidBatchError("spanType needs scopeType 'span'.")
        return _plan_traces(scorers, _clean_trace_ids(trace_ids))
    if targets is not None:
        if trace_ids is not None or span_type:
            raise InvalidBatchError("Give either targets, or traceIds with spanType, not both.")
        return _plan_targets(scorers, _clean_targets(targets))
    if not span_type:
        raise InvalidBatchError(
            "scopeType 'span' needs targets ([{traceId, spanId}]), or traceIds with spanType."
        )
    if span_type not in SpanType.values:
        raise InvalidBatchError(
            f"spanType must be one of {', '.join(SpanType.values)}; got {span_type!r}."
        )
    return _plan_span_type(scorers, _clean_trace_ids(trace_ids), span_type)


def _check_size(plan: BatchPlan) -> BatchPlan:
    if plan.score_count > MAX_BATCH_SCORES:
        raise InvalidBatchError(
            f"A batch makes at most {MAX_BATCH_SCORES:,} scores; this one would make "
            f"{plan.score_count:,} ({plan.target_count:,} targets × {len(plan.scorers)} "
            "scorers)."
        )
    return plan


def _plan_traces(scorers: list[Scorer], wanted: list[str]) -> BatchPlan:
    roots = dict(Trace.objects.filter(trace_id__in=wanted).values_list("trace_id", "span_type"))
    known = [t for t in wanted if t in roots]
    if not known:
        raise NoKnownTracesError(f"None of the {len(wanted)} trace ids is a known trace.")
    return _check_size(
        BatchPlan(
            scorers=scorers,
            scope_type=ScopeType.TRACE,
            span_type="",
            trace_ids=known,
            unknown_trace_ids=[t for t in wanted if t not in roots],
            unknown_targets=[],
            target_count=len(known),
            type_counts=dict(Counter(roots.values())),
        )
    )


def _plan_span_type(scorers: list[Scorer], wanted: list[str], span_type: str) -> BatchPlan:
    known = set(Trace.objects.filter(trace_id__in=wanted).values_list("trace_id", flat=True))
    if not known:
        raise NoKnownTracesError(f"None of the {len(wanted)} trace ids is a known trace.")
    pks = list(
        Span.objects.filter(trace_id__in=known, span_type=span_type)
        .order_by("trace_id", "started_at", "span_id")
        .values_list("pk", flat=True)
    )
    if not pks:
        label = SpanType(span_type).label.lower()
        raise NoKnownTracesError(
            f"None of the {len(known)} known traces has a span of type {label}."
        )
    return _check_size(
        BatchPlan(
            scorers=scorers,
            scope_type=ScopeType.SPAN,
            span_type=span_type,
            trace_ids=[t for t in wanted if t in known],
            unknown_trace_ids=[t for t in wanted if t not in known],
            unknown_targets=[],
            target_count=len(pks),
            type_counts={span_type: len(pks)},
            span_pks=pks,
        )
    )


def _plan_targets(scorers: list[Scorer], wanted: list[tuple[str, str]]) -> BatchPlan:
    trace_ids = list(dict.fromkeys(trace_id for trace_id, _ in wanted))
    roots = dict(
        Trace.objects.filter(trace_id__in=trace_ids).values_list("trace_id", "root_span_id")
    )
    # A target without a span id means the trace's root span.
    pairs = [(t, s or roots.get(t) or "") for t, s in wanted]
    found: dict[tuple[str, str], tuple[int, str]] = {}
    for start in range(0, len(pairs), CHUNK):
        chunk = [p for p in pairs[start : start + CHUNK] if p[0] in roots and p[1]]
        rows = Span.objects.filter(
            trace_id__in={t for t, _ in chunk}, span_id__in={s for _, s in chunk}
        ).values_list("trace_id", "span_id", "pk", "span_type")
        wanted_here = set(chunk)
        for trace_id, span_id, pk, kind in rows:
            if (trace_id, span_id) in wanted_here:
                found[(trace_id, span_id)] = (pk, kind)
    chosen: dict[int, str] = {}
    unknown_targets = []
    for (trace_id, span_id), pair in zip(wanted, pairs, strict=True):
        if pair in found:
            pk, kind = found[pair]
            chosen.setdefault(pk, kind)
        else:
            unknown = {"traceId": trace_id}
            if span_id:
                unknown["spanId"] = span_id
            unknown_targets.append(unknown)
    if not chosen:
        raise NoKnownTracesError(f"None of the {len(wanted)} targets is a known span.")
    known_traces = {t for t, _ in found}
    return _check_size(
        BatchPlan(
            scorers=scorers,
            scope_type=ScopeType.SPAN,
            span_type="",
            trace_ids=[t for t in trace_ids if t in known_traces],
            unknown_trace_ids=[t for t in trace_ids if t not in roots],
            unknown_targets=unknown_targets,
            target_count=len(chosen),
            type_counts=dict(Counter(chosen.values())),
            span_pks=list(chosen),
        )
    )


@transaction.atomic
def start_batch(
    *,
    scorer_id: str | None = None,
    scorer_ids: list[str] | None = None,
    trace_ids: list[str] | None = None,
    targets: list[dict] | None = None,
    scope_type: str = ScopeType.TRACE,
    span_type: str = "",
    created_by=None,
    idempotency_key: str = "",
    max_cost_usd: Any = None,
) -> ScoringBatch:
    """Start scoring traces or spans with one or more scorers; workers do the scoring.

    See ``plan_batch`` for the request forms. Makes exactly one Score per
    (scorer, target span): pending, or skipped at once (with the reason) when
    the scorer does not apply to the span's type. Raises a ``BatchError``
    subclass (with ``status_code``) for a request that cannot start. Repeats
    are scored once; unknown trace ids and targets are kept on the batch and
    not scored.

    The tasks are queued once the batch is committed. If the task queue cannot
    take them, the batch and its Scores are deleted again and
    ``QueueUnavailableError`` (503) is raised: a retry never finds a duplicate.
    With an ``idempotency_key``, a repeated request of the same user returns
    the batch the first one started (``batch.replayed`` is True).
    ``max_cost_usd`` caps what its judges spend (``scoring.costs``).
    """
    max_cost_usd = clean_max_cost(max_cost_usd)
    user = created_by if getattr(created_by, "is_authenticated", False) else None
    if idempotency_key and user is not None:
        earlier = ScoringBatch.objects.filter(
            created_by=user, idempotency_key=idempotency_key
        ).first()
        if earlier is not None:
            return _replayed(earlier)
    plan = plan_batch(
        scorer_ids=scorer_ids if scorer_ids is not None else scorer_id,
        trace_ids=trace_ids,
        targets=targets,
        scope_type=scope_type,
        span_type=span_type,
    )
    now = timezone.now()
    # A savepoint only when a key could collide with a concurrent request's.
    guard = transaction.atomic() if idempotency_key else contextlib.nullcontext()
    try:
        with guard:
            batch = ScoringBatch.objects.create(
                scorer_id=plan.scorers[0].id,
                scorer_name=", ".join(s.name for s in plan.scorers)[:1000],
                scorer_ids=[s.id for s in plan.scorers],
                scope_type=plan.scope_type,
                span_type=plan.span_type,
                trace_ids=plan.trace_ids,
                unknown_trace_ids=plan.unknown_trace_ids,
                unknown_targets=plan.unknown_targets,
                trace_count=len(plan.trace_ids),
                score_count=plan.score_count,
                created_by=user,
                idempotency_key=idempotency_key if user is not None else "",
                max_cost_usd=max_cost_usd,
            )
    except IntegrityError:
        # The same key in a request that got here first, at the same moment.
        earlier = ScoringBatch.objects.get(created_by=user, idempotency_key=idempotency_key)
        return _replayed(earlier)
    batch.plan = plan  # for the answer: per-scorer counts and skips
    skipped = 0
    for scorer in plan.scorers:
        if plan.scope_type == ScopeType.TRACE:
            _insert_pending_scores(batch=batch, scorer=scorer, trace_ids=plan.trace_ids, now=now)
        else:
            for start in range(0, len(plan.span_pks), CHUNK):
                _insert_pending_scores(
                    batch=batch,
                    scorer=scorer,
                    span_pks=plan.span_pks[start : start + CHUNK],
                    now=now,
                )
            skipped += _skip_inapplicable(batch=batch, scorer=scorer, plan=plan, now=now)
    if skipped == plan.score_count:
        transaction.on_commit(lambda: finish_batch_if_done(batch_id=batch.pk))
    else:
        direct = plan.score_count - skipped <= DIRECT_ENQUEUE_LIMIT
        transaction.on_commit(lambda: queue_batch_or_undo(batch_id=batch.pk, direct=direct))
    batch.replayed = False
    return batch


def _replayed(batch: ScoringBatch) -> ScoringBatch:
    """The batch an earlier request with the same Idempotency-Key started, for the answer."""
    batch.replayed = True
    batch.plan = BatchPlan(
        scorers=[s for s in registry.all() if s.id in batch.all_scorer_ids],
        scope_type=batch.scope_type,
        span_type=batch.span_type,
        trace_ids=list(batch.trace_ids),
        unknown_trace_ids=list(batch.unknown_trace_ids),
        unknown_targets=list(batch.unknown_targets),
        target_count=(batch.score_count or batch.trace_count) // max(len(batch.all_scorer_ids), 1),
        type_counts=dict(
            Counter(
                batch.scores.filter(scorer_id=batch.scorer_id).values_list("span_type", flat=True)
            )
        ),
    )
    return batch


def _skip_inapplicable(*, batch: ScoringBatch, scorer: Scorer, plan: BatchPlan, now) -> int:
    """Mark this scorer's Scores of span types it does not apply to as skipped."""
    skipped = 0
    for kind in plan.type_counts:
        reason = scorer.skip_reason(kind)
        if reason:
            skipped += Score.objects.filter(
                batch=batch, scorer_id=scorer.id, span_type=kind
            ).update(status=ScoreStatus.SKIPPED, reason=reason, finished_at=now)
    return skipped


def queue_batch_or_undo(*, batch_id, direct: bool) -> None:
    """Queue a committed batch's tasks; if the queue is away, delete the batch and say so.

    Small batches queue their chunk tasks from here; large ones one fan-out
    task (``scoring.tasks.enqueue_batch``), so the request answers at once.
    Tasks already queued for a batch that is then deleted find no Score and
    do nothing.
    """
    try:
        if direct:
            enqueue_scores(batch_id=batch_id)
        else:
            async_task("scoring.tasks.enqueue_batch", str(batch_id), group=str(batch_id))
    except BROKER_ERRORS as error:
        log.warning("Could not queue batch %s: %s", batch_id, error)
        try:
            ScoringBatch.objects.filter(pk=batch_id).delete()
        except DatabaseError:
            log.exception("Could not remove batch %s after the queue failed", batch_id)
        raise QueueUnavailableError(QUEUE_UNAVAILABLE) from error


def _insert_pending_scores(
    *,
    batch: ScoringBatch,
    scorer: Scorer,
    now,
    trace_ids: list[str] | None = None,
    span_pks: list[int] | None = None,
    source: str = ScoreSource.BATCH,
    rule_id: int | None = None,
    rule_version: int | None = None,
) -> int:
    """Create one scorer's pending Scores with one INSERT … SELECT, whatever their number.

    From the traces (their root spans: trace scope) or from the spans
    ``span_pks`` (span scope). ``bulk_create`` would take one INSERT per ~45
    rows on SQLite (999 variables per statement); this keeps a batch at one
    statement per scorer on every database. Values go through each field's own
    conversion.
    """
    qn = connection.ops.quote_name
    meta = Score._meta
    constants = {
        "scorer_id": scorer.id,
        "scorer_name": scorer.name,
        "scorer_version": scorer.version,
        "reason": "",
        "status": ScoreStatus.PENDING,
        "error": "",
        "details": {},
        "source": source,
        "batch": batch.pk,
        "attempts": 0,
        "claimed_by": "",
        "queued_at": now,
        "created_at": now,
    }
    if rule_id is not None:
        constants |= {"rule": rule_id, "rule_version": rule_version}
    columns, selected, params = [], [], []
    for name, value in constants.items():
        model_field = meta.get_field(name)
        columns.append(qn(model_field.column))
        # PostgreSQL types an untyped parameter in a SELECT list as text.
        cast = connection.vendor == "postgresql"
        selected.append(f"CAST(%s AS {model_field.db_type(connection)})" if cast else "%s")
        params.append(model_field.get_db_prep_save(value, connection))
    columns += [
        qn(meta.get_field(name).column) for name in ("trace", "span_id", "span_name", "span_type")
    ]
    if span_pks is None:
        source, key, values = Trace._meta, "trace_id", trace_ids or []
        picked = ("trace_id", "root_span_id", "name", "span_type")
    else:
        source, key, values = Span._meta, "id", span_pks
        picked = ("trace", "span_id", "name", "span_type")
    selected += [qn(source.get_field(name).column) for name in picked]
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(selected)} FROM {qn(source.db_table)} "
        f"WHERE {qn(source.get_field(key).column)} IN ({', '.join(['%s'] * len(values))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *values])
        return cursor.rowcount


def enqueue_scores(*, batch_id, score_ids: list[int] | None = None) -> int:
    """Queue the pending Scores of the batch (or ``score_ids``), a task per chunk."""
    pending = Score.objects.filter(status=ScoreStatus.PENDING)
    pending = pending.filter(pk__in=score_ids) if score_ids else pending.filter(batch_id=batch_id)
    ids = list(pending.order_by("pk").values_list("pk", flat=True))
    queue_score_chunks([(score_id, batch_id) for score_id in ids])
    return len(ids)


def queue_score_chunks(scores: list[tuple[int, Any]]) -> int:
    """Queue (score id, batch id) pairs as scoring tasks of up to
    ``TRACESCORE_SCORE_CHUNK`` Scores of one batch each; returns the tasks queued.

    A chunk holds one batch's Scores, in id order, so it reads the same few
    traces' spans and a task's group is its batch.
    """
    size = settings.TRACESCORE_SCORE_CHUNK
    by_batch: dict[Any, list[int]] = {}
    for score_id, batch_id in scores:
        by_batch.setdefault(batch_id, []).append(score_id)
    tasks = 0
    broker = get_broker() if by_batch else None  # one connection for all the tasks
    for batch_id, ids in by_batch.items():
        ids.sort()
        for start in range(0, len(ids), size):
            async_task(
                SCORE_TASK,
                ids[start : start + size],
                group=str(batch_id),
                save=False,
                broker=broker,
            )
            tasks += 1
    return tasks


@dataclass
class Outcome:
    """What a scorer run produced for one Score: a result or an error message."""

    span_id: str = ""
    span_name: str = ""
    span_type: str = ""
    score: float | None = None
    reason: str = ""
    error: str = ""
    skipped: bool = False  # the scorer does not apply; ``reason`` says why
    details: dict[str, Any] = field(default_factory=dict)
    input: Any = None
    output: Any = None
    duration_ms: float | None = None
    # The scorer was kept waiting (rate limits) past its time limit: queue it again
    # instead of recording, while it has attempts left (``error`` says what happened).
    requeue: bool = False

    @property
    def status(self) -> str:
        if self.error:
            return ScoreStatus.FAILED
        return ScoreStatus.SKIPPED if self.skipped else ScoreStatus.SUCCEEDED


def judge_cost_of(details: dict[str, Any]) -> float | None:
    """The cost in US dollars a judge recorded in a Score's details, if it was priced."""
    cost = details.get("cost_usd") if isinstance(details, dict) else None
    return float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None


def lease_length() -> timedelta:
    """How long a worker may hold a Score it claimed (longer than any task may run)."""
    return timedelta(seconds=settings.TRACESCORE_SCORE_LEASE)


def _claim_token() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim_scores(*, score_ids: list[int]) -> tuple[str, list[Score]]:
    """Claim the pending Scores of ``score_ids`` for this worker run.

    One conditional UPDATE takes each Score that is pending and not leased to
    a live run, so of two deliveries of the same chunk each Score goes to
    exactly one; a Score whose lease expired (its worker died) may be claimed
    again. Each claim counts as an attempt. Returns the claim token and the
    claimed Scores (with the fields a run needs, batch included), in id order.
    """
    now = timezone.now()
    token = _claim_token()
    claimed = (
        Score.objects.filter(pk__in=score_ids, status=ScoreStatus.PENDING)
        .exclude(lease_expires_at__gt=now)
        .update(
            claimed_by=token,
            lease_expires_at=now + lease_length(),
            started_at=now,
            attempts=F("attempts") + 1,
        )
    )
    if not claimed:
        return token, []
    scores = list(
        Score.objects.filter(pk__in=score_ids, claimed_by=token, status=ScoreStatus.PENDING)
        .select_related("batch", "rule")
        .only(
            "trace_id",
            "scorer_id",
            "span_id",
            "attempts",
            "claimed_by",
            "batch_id",
            "batch__scope_type",
            "batch__scorer_id",
            "batch__max_cost_usd",
            "rule_id",
            "rule__max_cost_usd",
        )
        .order_by("pk")
    )
    return token, scores


def claim_score(*, score_id: int) -> str | None:
    """Claim one pending Score (``claim_scores`` of one); its claim token, or None."""
    token, claimed = claim_scores(score_ids=[score_id])
    return token if claimed else None


def _score_values(outcome: Outcome, now) -> dict[str, Any]:
    """The fields a recorded outcome sets (span fields only when known)."""
    status = outcome.status
    values = {
        "status": status,
        "span_id": outcome.span_id,
        "span_name": outcome.span_name,
        "span_type": outcome.span_type,
        "score": outcome.score if status == ScoreStatus.SUCCEEDED else None,
        "reason": outcome.reason,
        "error": outcome.error,
        "details": outcome.details,
        "input": outcome.input,
        "output": outcome.output,
        "duration_ms": outcome.duration_ms,
        "finished_at": now,
    }
    values["cost_usd"] = judge_cost_of(outcome.details)
    return values


KEEP_WHEN_EMPTY = ("span_id", "span_name", "span_type")


def record_scores(*, claim: str, outcomes: dict[int, Outcome]) -> set[int]:
    """Store the outcomes (by Score id) of the worker run holding the claim ``claim``.

    One transaction: one UPDATE … FROM (VALUES …) on PostgreSQL, one UPDATE per
    Score elsewhere; each only where the Score is still pending and this run
    holds it. Then each batch touched is finished if nothing of it is pending.
    Returns the ids recorded: a Score whose lease ran out and was handed on (or
    that is finished) is left alone.
    """
    if not outcomes:
        return set()
    now = timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            recorded = _record_values(claim=claim, outcomes=outcomes, now=now)
        else:
            recorded = set()
            for score_id, outcome in sorted(outcomes.items()):
                values = _score_values(outcome, now)
                for name in KEEP_WHEN_EMPTY:
                    values[name] = values[name] or F(name)
                if Score.objects.filter(
                    pk=score_id, status=ScoreStatus.PENDING, claimed_by=claim
                ).update(lease_expires_at=None, **values):
                    recorded.add(score_id)
        if recorded:
            after_scores_finished(recorded)
    return recorded


def after_scores_finished(score_ids) -> None:
    """Settle the rule outcomes of these just-finished Scores' traces, and finish each
    batch touched if nothing of it is pending. Two queries, plus one per batch."""
    rows = Score.objects.filter(pk__in=list(score_ids), batch__isnull=False).values_list(
        "batch_id", "rule_id", "trace_id"
    )
    batches: dict[Any, set[str]] = {}
    for batch_id, rule_id, trace_id in rows:
        traces = batches.setdefault(batch_id, set())
        if rule_id:
            traces.add(trace_id)
    for batch_id, rule_traces in sorted(batches.items(), key=lambda item: str(item[0])):
        if rule_traces:
            from scoring import rules  # rules builds on this module

            rules.settle_outcomes(batch_id=batch_id, trace_ids=sorted(rule_traces))
        finish_batch_if_done(batch_id=batch_id)


def _record_values(*, claim: str, outcomes: dict[int, Outcome], now) -> set[int]:
    """PostgreSQL: every outcome in one ``UPDATE … FROM (VALUES …)``."""
    qn = connection.ops.quote_name
    meta = Score._meta
    names = list(_score_values(Outcome(), now))
    fields = [meta.get_field(name) for name in names]
    casts = [f"CAST(%s AS {f.db_type(connection)})" for f in fields]
    row = f"(CAST(%s AS bigint), {', '.join(casts)})"
    rows, params = [], []
    for score_id, outcome in sorted(outcomes.items()):
        values = _score_values(outcome, now)
        rows.append(row)
        params.append(score_id)
        params += [f.get_db_prep_save(values[f.name], connection) for f in fields]
    table = qn(meta.db_table)
    assignments = []
    for f in fields:
        column = qn(f.column)
        if f.name in KEEP_WHEN_EMPTY:
            assignments.append(f"{column} = COALESCE(NULLIF(v.{column}, ''), {table}.{column})")
        else:
            assignments.append(f"{column} = v.{column}")
    assignments.append(f"{qn(meta.get_field('lease_expires_at').column)} = NULL")
    columns = ", ".join(["id", *(qn(f.column) for f in fields)])
    sql = (
        f"UPDATE {table} SET {', '.join(assignments)} "
        f"FROM (VALUES {', '.join(rows)}) AS v({columns}) "
        f"WHERE {table}.{qn(meta.pk.column)} = v.id "
        f"AND {table}.{qn(meta.get_field('status').column)} = %s "
        f"AND {table}.{qn(meta.get_field('claimed_by').column)} = %s "
        f"RETURNING {table}.{qn(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, ScoreStatus.PENDING, claim])
        return {row[0] for row in cursor.fetchall()}


def record_score(*, score_id: int, claim: str, outcome: Outcome) -> bool:
    """Store the outcome of the worker run that holds the claim ``claim`` on this Score.

    Returns False, and changes nothing, when the Score is finished or another
    run holds it now (this run's lease expired and the Score was handed on).
    """
    return bool(record_scores(claim=claim, outcomes={score_id: outcome}))


def release_scores(*, claim: str, score_ids: list[int]) -> int:
    """Hand back claimed Scores whose scorer never started, and queue them again.

    Their claim is undone, attempt included (nothing was tried), so they wait
    for a worker like any queued Score. Returns how many were handed back.
    """
    if not score_ids:
        return 0
    marker = timezone.now()
    released = Score.objects.filter(
        pk__in=score_ids, status=ScoreStatus.PENDING, claimed_by=claim
    ).update(
        claimed_by="",
        lease_expires_at=None,
        started_at=None,
        queued_at=marker,
        attempts=F("attempts") - 1,
    )
    again = Score.objects.filter(
        pk__in=score_ids, status=ScoreStatus.PENDING, claimed_by="", queued_at=marker
    ).values_list("pk", "batch_id")
    queue_score_chunks(list(again))
    return released


def requeue_throttled_scores(
    *, claim: str, outcomes: dict[int, Outcome]
) -> tuple[set[int], set[int]]:
    """Hand back Scores whose scorer was throttled past its time limit, and queue them
    again; those already started ``TRACESCORE_TASK_MAX_ATTEMPTS`` times are
    recorded failed with their outcome's error instead. Returns the ids queued
    again and the ids recorded failed.
    """
    if not outcomes:
        return set(), set()
    max_attempts = settings.Q_CLUSTER.get("max_attempts") or 3
    held = Score.objects.filter(pk__in=list(outcomes), status=ScoreStatus.PENDING, claimed_by=claim)
    spent = set(held.filter(attempts__gte=max_attempts).values_list("pk", flat=True))
    failed = set()
    if spent:
        failed = record_scores(claim=claim, outcomes={pk: outcomes[pk] for pk in spent})
    marker = timezone.now()
    again = held.exclude(pk__in=spent)
    again.update(claimed_by="", lease_expires_at=None, started_at=None, queued_at=marker)
    requeued = list(
        Score.objects.filter(
            pk__in=list(outcomes), status=ScoreStatus.PENDING, claimed_by="", queued_at=marker
        ).values_list("pk", "batch_id")
    )
    queue_score_chunks(requeued)
    return {pk for pk, _ in requeued}, failed


@transaction.atomic
def finish_batch_if_done(*, batch_id) -> None:
    """Stamp ``finished_at`` once no Score of the batch is pending.

    The batch row is locked first: two workers finishing the last two Scores at
    once would otherwise each still see the other's Score as pending, and
    neither would finish the batch. With the lock, the second one to get it
    sees the first one's committed Score.
    """
    list(ScoringBatch.objects.select_for_update().filter(pk=batch_id).values_list("pk"))
    pending = Score.objects.filter(batch_id=OuterRef("pk"), status=ScoreStatus.PENDING)
    # A batch still fanning out gets more Scores: it finishes after its last chunk.
    ScoringBatch.objects.filter(pk=batch_id, finished_at__isnull=True, fanning_out=False).exclude(
        Exists(pending)
    ).update(finished_at=timezone.now())


def stale_after() -> timedelta:
    """How long a Score no worker started waits, with nothing left in the broker, before
    it is queued again."""
    return timedelta(seconds=settings.TRACESCORE_STALE_AFTER)


def broker_has_waiting_tasks() -> bool:
    """Whether the broker still holds tasks that no worker has taken yet."""
    return get_broker().queue_size() > 0


def requeue_stale_scores(*, older_than: timedelta | None = None) -> dict[str, int]:
    """Queue again the Scores whose work was lost; fail those whose workers kept dying.

    See the module docstring for what counts as lost. Every UPDATE re-checks
    the state it acts on, so a Score finished or claimed in the meantime is
    left alone. Returns how many Scores were queued again and failed.
    """
    now = timezone.now()
    max_attempts = settings.Q_CLUSTER.get("max_attempts") or 3
    abandoned = Score.objects.filter(status=ScoreStatus.PENDING, lease_expires_at__lte=now)

    failed = 0
    exhausted = abandoned.filter(attempts__gte=max_attempts)
    for score_id, claim in exhausted.values_list("pk", "claimed_by"):
        failed += _give_up(score_id=score_id, claim=claim, attempts=max_attempts, now=now)

    # A marker time picks out exactly the rows these UPDATEs changed.
    marker = timezone.now()
    abandoned.filter(attempts__lt=max_attempts).update(
        claimed_by="", lease_expires_at=None, started_at=None, queued_at=marker
    )
    if not broker_has_waiting_tasks():
        cutoff = now - (older_than if older_than is not None else stale_after())
        Score.objects.filter(
            status=ScoreStatus.PENDING, lease_expires_at__isnull=True, queued_at__lte=cutoff
        ).update(queued_at=marker)
    requeued = list(
        Score.objects.filter(
            status=ScoreStatus.PENDING, lease_expires_at__isnull=True, queued_at=marker
        ).values_list("pk", "batch_id")
    )
    queue_score_chunks(requeued)
    return {"requeued": len(requeued), "failed": failed}


@transaction.atomic
def _give_up(*, score_id: int, claim: str, attempts: int, now) -> int:
    updated = Score.objects.filter(
        pk=score_id, status=ScoreStatus.PENDING, claimed_by=claim, lease_expires_at__lte=now
    ).update(
        status=ScoreStatus.FAILED,
        score=None,
        error=f"Gave up after {attempts} attempts: the worker running this score "
        "stopped before it finished, each time.",
        lease_expires_at=None,
        finished_at=timezone.now(),
    )
    if updated:
        after_scores_finished([score_id])
    return updated
