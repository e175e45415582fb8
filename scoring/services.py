"""Every write of the scoring app: starting batches, recording scores, recovering lost work.

A batch creates one ``pending`` Score per known trace in the same transaction
as the batch itself, then (on commit) queues one django-q2 task per Score.

A task first *claims* its Score (``claim_score``): one conditional UPDATE
that succeeds for exactly one worker run and gives it a lease of
``TRACESCORE_SCORE_LEASE`` seconds, longer than a task may run before
django-q2 kills it. Only the holder of the claim records the outcome
(``record_score``), so a Score is scored once, and a judge called once, however
many times its task is in the broker.

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
import os
import re
import socket
import uuid
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

from observability.models import Trace
from scoring.choices import ScopeType, ScoreSource, ScoreStatus
from scoring.models import Score, ScoringBatch
from scoring.scorers import registry

log = logging.getLogger(__name__)

MAX_BATCH_TRACES = 10_000
# Batches up to this size queue their tasks straight from the request; larger
# ones hand the queueing to one task, so the request answers at once.
DIRECT_ENQUEUE_LIMIT = 50
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SCORE_TASK = "scoring.tasks.score_trace"


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


@transaction.atomic
def start_batch(
    *,
    scorer_id: str,
    trace_ids: list[str],
    scope_type: str = ScopeType.TRACE,
    created_by=None,
    idempotency_key: str = "",
) -> ScoringBatch:
    """Start scoring these traces with this scorer; the work happens in the workers.

    Raises a ``BatchError`` subclass (with ``status_code``) for a request that
    cannot start. Repeated ids are scored once; unknown ids are kept on the
    batch as ``unknown_trace_ids`` and not scored.

    The tasks are queued once the batch is committed. If the task queue cannot
    take them, the batch and its Scores are deleted again and
    ``QueueUnavailableError`` (503) is raised: a retry never finds a duplicate.
    With an ``idempotency_key``, a repeated request of the same user returns
    the batch the first one started (``batch.replayed`` is True).
    """
    user = created_by if getattr(created_by, "is_authenticated", False) else None
    if idempotency_key and user is not None:
        earlier = ScoringBatch.objects.filter(
            created_by=user, idempotency_key=idempotency_key
        ).first()
        if earlier is not None:
            earlier.replayed = True
            return earlier
    if scope_type != ScopeType.TRACE:
        raise InvalidBatchError(
            f"scopeType must be 'trace' (whole-trace scoring); got {scope_type!r}."
        )
    try:
        scorer = registry.get(scorer_id)
    except registry.UnknownScorer:
        raise UnknownScorerError(f"No scorer with id {scorer_id!r}.") from None
    available, why = scorer.availability()
    if not available:
        raise InvalidBatchError(f"Scorer {scorer_id!r} is unavailable: {why}")
    wanted = _clean_trace_ids(trace_ids)
    roots = dict(Trace.objects.filter(trace_id__in=wanted).values_list("trace_id", "root_span_id"))
    known = [t for t in wanted if t in roots]
    unknown = [t for t in wanted if t not in roots]
    if not known:
        raise NoKnownTracesError(f"None of the {len(wanted)} trace ids is a known trace.")

    now = timezone.now()
    # A savepoint only when a key could collide with a concurrent request's.
    guard = transaction.atomic() if idempotency_key else contextlib.nullcontext()
    try:
        with guard:
            batch = ScoringBatch.objects.create(
                scorer_id=scorer.id,
                scorer_name=scorer.name,
                scope_type=scope_type,
                trace_ids=known,
                unknown_trace_ids=unknown,
                trace_count=len(known),
                created_by=user,
                idempotency_key=idempotency_key if user is not None else "",
            )
    except IntegrityError:
        # The same key in a request that got here first, at the same moment.
        earlier = ScoringBatch.objects.get(created_by=user, idempotency_key=idempotency_key)
        earlier.replayed = True
        return earlier
    _insert_pending_scores(batch=batch, scorer=scorer, trace_ids=known, now=now)
    direct = len(known) <= DIRECT_ENQUEUE_LIMIT
    transaction.on_commit(lambda: queue_batch_or_undo(batch_id=batch.pk, direct=direct))
    batch.replayed = False
    return batch


def queue_batch_or_undo(*, batch_id, direct: bool) -> None:
    """Queue a committed batch's tasks; if the queue is away, delete the batch and say so.

    Small batches queue one task per Score from here; large ones one fan-out
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


def _insert_pending_scores(*, batch: ScoringBatch, scorer, trace_ids: list[str], now) -> int:
    """Create the batch's pending Scores with one INSERT … SELECT, whatever their number.

    ``bulk_create`` would take one INSERT per ~45 rows on SQLite (999
    variables per statement); this keeps a batch of any size at one statement
    on every database. Values go through each field's own conversion.
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
        "source": ScoreSource.BATCH,
        "batch": batch.pk,
        "attempts": 0,
        "claimed_by": "",
        "queued_at": now,
        "created_at": now,
    }
    columns, selected, params = [], [], []
    for name, value in constants.items():
        model_field = meta.get_field(name)
        columns.append(qn(model_field.column))
        # PostgreSQL types an untyped parameter in a SELECT list as text.
        cast = connection.vendor == "postgresql"
        selected.append(f"CAST(%s AS {model_field.db_type(connection)})" if cast else "%s")
        params.append(model_field.get_db_prep_save(value, connection))
    trace_meta = Trace._meta
    columns += [qn(meta.get_field("trace").column), qn(meta.get_field("span_id").column)]
    selected += [
        qn(trace_meta.get_field("trace_id").column),
        qn(trace_meta.get_field("root_span_id").column),
    ]
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(selected)} FROM {qn(trace_meta.db_table)} "
        f"WHERE {qn(trace_meta.get_field('trace_id').column)} "
        f"IN ({', '.join(['%s'] * len(trace_ids))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *trace_ids])
        return cursor.rowcount


def enqueue_scores(*, batch_id, score_ids: list[int] | None = None) -> int:
    """Queue one scoring task per pending Score of the batch (or of ``score_ids``)."""
    pending = Score.objects.filter(status=ScoreStatus.PENDING)
    pending = pending.filter(pk__in=score_ids) if score_ids else pending.filter(batch_id=batch_id)
    ids = list(pending.values_list("pk", flat=True))
    for score_id in ids:
        async_task(SCORE_TASK, score_id, group=str(batch_id), save=False)
    return len(ids)


@dataclass
class Outcome:
    """What a scorer run produced for one Score: a result or an error message."""

    span_id: str = ""
    score: float | None = None
    reason: str = ""
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    input: Any = None
    output: Any = None
    duration_ms: float | None = None


def lease_length() -> timedelta:
    """How long a worker may hold a Score it claimed (longer than any task may run)."""
    return timedelta(seconds=settings.TRACESCORE_SCORE_LEASE)


def claim_score(*, score_id: int) -> str | None:
    """Claim a pending Score for this worker run; its claim token, or None.

    One conditional UPDATE, so of two deliveries of the same task exactly one
    gets the Score. A Score whose lease expired (its worker died) may be
    claimed again; each claim counts as an attempt.
    """
    now = timezone.now()
    token = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    claimed = (
        Score.objects.filter(pk=score_id, status=ScoreStatus.PENDING)
        .exclude(lease_expires_at__gt=now)
        .update(
            claimed_by=token,
            lease_expires_at=now + lease_length(),
            started_at=now,
            attempts=F("attempts") + 1,
        )
    )
    return token if claimed else None


@transaction.atomic
def record_score(*, score_id: int, claim: str, outcome: Outcome) -> bool:
    """Store the outcome of the worker run that holds the claim ``claim`` on this Score.

    Returns False, and changes nothing, when the Score is finished or another
    run holds it now (this run's lease expired and the Score was handed on).
    """
    failed = bool(outcome.error)
    updated = Score.objects.filter(
        pk=score_id, status=ScoreStatus.PENDING, claimed_by=claim
    ).update(
        status=ScoreStatus.FAILED if failed else ScoreStatus.SUCCEEDED,
        span_id=outcome.span_id or F("span_id"),
        score=None if failed else outcome.score,
        reason=outcome.reason,
        error=outcome.error,
        details=outcome.details,
        input=outcome.input,
        output=outcome.output,
        duration_ms=outcome.duration_ms,
        finished_at=timezone.now(),
        lease_expires_at=None,
    )
    if updated:
        batch_id = Score.objects.filter(pk=score_id).values_list("batch_id", flat=True).first()
        if batch_id:
            finish_batch_if_done(batch_id=batch_id)
    return bool(updated)


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
    ScoringBatch.objects.filter(pk=batch_id, finished_at__isnull=True).exclude(
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
    for score_id, batch_id in requeued:
        async_task(SCORE_TASK, score_id, group=str(batch_id), save=False)
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
        batch_id = Score.objects.filter(pk=score_id).values_list("batch_id", flat=True).first()
        if batch_id:
            finish_batch_if_done(batch_id=batch_id)
    return updated
