"""Every write of the scoring app: starting batches, recording scores, recovering lost work.

A batch creates one ``pending`` Score per known trace in the same transaction
as the batch itself, then (on commit) queues one django-q2 task per Score.
Each task turns its Score into ``succeeded`` or ``failed`` exactly once:
``record_score`` only updates a Score that is still pending, so a retried or
twice-delivered task cannot add or overwrite a result. A Score whose task was
lost (a worker killed mid-task, a broker restarted) is found by
``requeue_stale_scores`` and queued again, up to the attempt limit, after which
it fails with a message saying so. No evaluation stays pending silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django_q.tasks import async_task

from observability.models import Trace
from scoring.choices import ScopeType, ScoreSource, ScoreStatus
from scoring.models import Score, ScoringBatch
from scoring.scorers import registry

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
) -> ScoringBatch:
    """Start scoring these traces with this scorer; the work happens in the workers.

    Raises a ``BatchError`` subclass (with ``status_code``) for a request that
    cannot start. Repeated ids are scored once; unknown ids are kept on the
    batch as ``unknown_trace_ids`` and not scored.
    """
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
    batch = ScoringBatch.objects.create(
        scorer_id=scorer.id,
        scorer_name=scorer.name,
        scope_type=scope_type,
        trace_ids=known,
        unknown_trace_ids=unknown,
        trace_count=len(known),
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    Score.objects.bulk_create(
        [
            Score(
                scorer_id=scorer.id,
                scorer_name=scorer.name,
                scorer_version=scorer.version,
                trace_id=trace_id,
                span_id=roots[trace_id],
                source=ScoreSource.BATCH,
                batch=batch,
                attempts=1,
                queued_at=now,
            )
            for trace_id in known
        ]
    )
    if len(known) <= DIRECT_ENQUEUE_LIMIT:
        transaction.on_commit(lambda: enqueue_scores(batch_id=batch.pk))
    else:
        transaction.on_commit(
            lambda: async_task("scoring.tasks.enqueue_batch", str(batch.pk), group=str(batch.pk))
        )
    return batch


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


def mark_started(*, score_id: int) -> bool:
    """Note that a worker picked this Score up; False when it is no longer pending."""
    return bool(
        Score.objects.filter(pk=score_id, status=ScoreStatus.PENDING).update(
            started_at=timezone.now()
        )
    )


@transaction.atomic
def record_score(*, score_id: int, outcome: Outcome) -> bool:
    """Store the outcome of one scoring task; only the first outcome for a Score counts.

    Returns False when the Score was already finished (a duplicate delivery).
    """
    failed = bool(outcome.error)
    updated = Score.objects.filter(pk=score_id, status=ScoreStatus.PENDING).update(
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
    """How long a queued or started Score may stay pending before it counts as lost."""
    return timedelta(seconds=settings.TRACESCORE_STALE_AFTER)


def requeue_stale_scores(*, older_than: timedelta | None = None) -> dict[str, int]:
    """Queue again the pending Scores whose task was lost; fail those out of attempts.

    A Score is stale when it was queued (or last started) longer ago than
    ``older_than`` and is still pending. Requeueing is safe even if the
    original task is only slow: ``record_score`` keeps the first outcome.
    """
    cutoff = timezone.now() - (older_than if older_than is not None else stale_after())
    max_attempts = settings.Q_CLUSTER.get("max_attempts") or 3
    stale = Score.objects.filter(status=ScoreStatus.PENDING, queued_at__lte=cutoff).exclude(
        started_at__gt=cutoff
    )
    exhausted = list(stale.filter(attempts__gte=max_attempts).values_list("pk", flat=True))
    for score_id in exhausted:
        record_score(
            score_id=score_id,
            outcome=Outcome(
                error=f"Gave up after {max_attempts} attempts: the worker running this "
                "score stopped before it finished."
            ),
        )
    retry = list(stale.filter(attempts__lt=max_attempts).values_list("pk", "batch_id"))
    if retry:
        ids = [pk for pk, _ in retry]
        Score.objects.filter(pk__in=ids).update(
            attempts=F("attempts") + 1, queued_at=timezone.now(), started_at=None
        )
        for score_id, batch_id in retry:
            async_task(SCORE_TASK, score_id, group=str(batch_id), save=False)
    return {"requeued": len(retry), "failed": len(exhausted)}
