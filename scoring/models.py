"""Scoring batches and the scores they produce, each linked to its trace and span."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.urls import reverse

from scoring.choices import ScopeType, ScoreSource, ScoreStatus


class ScoringBatch(models.Model):
    """One "score these traces with this scorer" request.

    Its progress (pending / succeeded / failed) is derived from its Scores: a
    Score row is created as pending for every known trace when the batch
    starts, and each worker task turns one into succeeded or failed. A pending
    Score is *queued* until a worker claims it, then *running*.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scorer_id = models.CharField(max_length=100, db_index=True)
    scorer_name = models.CharField(max_length=200, blank=True, default="")
    scope_type = models.CharField(max_length=16, choices=ScopeType.choices, default=ScopeType.TRACE)
    trace_ids = models.JSONField(default=list, help_text="Known trace ids that are scored.")
    unknown_trace_ids = models.JSONField(default=list, blank=True)
    trace_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="The Idempotency-Key of the request that started it: a retry returns this batch.",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "scoring batches"
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="batch_unique_idempotency_key_per_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.scorer_id} × {self.trace_count} ({self.created_at:%Y-%m-%d %H:%M})"

    def progress(self) -> dict[str, int]:
        """Counts of this batch's scores by status, plus the total.

        ``pending`` is ``queued`` (waiting for a worker) plus ``running`` (a
        worker holds its lease).
        """
        pending = Q(status=ScoreStatus.PENDING)
        counts = self.scores.aggregate(
            pending=Count("id", filter=pending),
            queued=Count("id", filter=pending & Q(lease_expires_at__isnull=True)),
            running=Count("id", filter=pending & Q(lease_expires_at__isnull=False)),
            succeeded=Count("id", filter=Q(status=ScoreStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status=ScoreStatus.FAILED)),
        )
        return {"total": self.trace_count, **counts}


class ScoreQuerySet(models.QuerySet):
    def newest_first(self):
        return self.order_by("-created_at", "-id")

    def finished(self):
        return self.exclude(status=ScoreStatus.PENDING)


class Score(models.Model):
    """One scorer result for one trace (and the span that was scored).

    Keeps the scorer's name and version as they were when it ran, and the
    input/output that was scored, so a score stays explainable after the
    trace or the scorer changes. Exactly one Score per (batch, trace): a
    retried or twice-delivered task updates it instead of adding a second.

    A worker claims a pending Score before it runs the scorer: ``claimed_by``
    names that run and ``lease_expires_at`` says until when it may hold the
    Score. Only the holder of the claim records the outcome, so a Score is
    scored once however often its task is delivered.
    """

    scorer_id = models.CharField(max_length=100)
    scorer_name = models.CharField(max_length=200, blank=True, default="")
    scorer_version = models.CharField(max_length=50, blank=True, default="")
    trace = models.ForeignKey(
        "observability.Trace", on_delete=models.CASCADE, related_name="scores"
    )
    span_id = models.CharField(max_length=16, blank=True, default="")
    score = models.FloatField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=16, choices=ScoreStatus.choices, default=ScoreStatus.PENDING
    )
    error = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=ScoreSource.choices, default=ScoreSource.BATCH)
    batch = models.ForeignKey(
        ScoringBatch, null=True, blank=True, on_delete=models.CASCADE, related_name="scores"
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="How many times a worker started scoring this score."
    )
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(
        max_length=100, blank=True, default="", help_text="The worker run that holds this score."
    )
    lease_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Until when the worker that claimed this pending score may hold it.",
    )
    duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScoreQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "trace"], name="score_unique_per_batch_trace"),
        ]
        indexes = [
            models.Index(fields=["scorer_id", "-created_at"], name="score_scorer_created_idx"),
            models.Index(fields=["trace", "-created_at"], name="score_trace_created_idx"),
            models.Index(fields=["status", "created_at"], name="score_status_created_idx"),
            models.Index(
                fields=["lease_expires_at"],
                name="score_pending_lease_idx",
                condition=Q(status=ScoreStatus.PENDING),
            ),
        ]

    def __str__(self) -> str:
        value = "—" if self.score is None else f"{self.score:.2f}"
        return f"{self.scorer_id} on {self.trace_id}: {value} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("observability:trace-detail", args=[self.trace_id])
