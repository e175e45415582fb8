"""Scoring batches and the scores they produce, each linked to its trace and span."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Count, Q, Sum
from django.urls import reverse

from scoring.choices import RuleOutcomeKind, ScopeType, ScoreSource, ScoreStatus

TRACE_TARGET = "trace"


class ScoringRule(models.Model):
    """Score every trace that matches a filter: new ones live, once finished, and old
    ones on request (a backfill).

    ``filter`` has the trace list's fields (``name``, ``type``, ``status``,
    ``service``, ``metadata`` {key: value}, ``minDurationMs``, ``maxDurationMs``);
    ``target`` is ``"trace"`` (the root span, for the whole trace) or a span type
    (every span of that type). ``sample_rate`` (0..1) is decided from the trace
    id, so one trace always gets the same decision. Changing the scorers, filter,
    target or sample rate makes a new ``version`` (kept in ScoringRuleVersion);
    Scores and outcomes keep the version they ran under.
    """

    name = models.CharField(max_length=200)
    scorer_ids = models.JSONField(default=list)
    filter = models.JSONField(default=dict, blank=True)
    target = models.CharField(max_length=32, default=TRACE_TARGET)
    sample_rate = models.FloatField(default=1.0)
    live = models.BooleanField(default=True, help_text="Score new traces once they finish.")
    active = models.BooleanField(default=True, help_text="Paused rules do nothing.")
    max_cost_usd = models.FloatField(
        null=True, blank=True, help_text="Judge spending after which its Scores are skipped."
    )
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            models.Index(
                fields=["id"],
                name="rule_active_live_idx",
                condition=Q(active=True, live=True),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("scoring:rule-detail", args=[self.pk])


class ScoringRuleVersion(models.Model):
    """What a rule was at one version: what its Scores and outcomes of that version ran under."""

    rule = models.ForeignKey(ScoringRule, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    scorer_ids = models.JSONField(default=list)
    filter = models.JSONField(default=dict, blank=True)
    target = models.CharField(max_length=32, default=TRACE_TARGET)
    sample_rate = models.FloatField(default=1.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rule", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "version"], name="rule_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} v{self.version}"


class ScoringBatch(models.Model):
    """One "score these traces (or spans) with these scorers" request.

    Its progress (pending / succeeded / failed / skipped) is derived from its
    Scores: one Score row per (scorer, target span) is created when the batch
    starts, pending, or skipped at once when the scorer does not apply to the
    span's type; each worker task turns a pending one into succeeded, failed or
    skipped. A pending Score is *queued* until a worker claims it, then *running*.
    ``scorer_id``/``scorer_name`` name the first scorer (and all of them, joined).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scorer_id = models.CharField(max_length=100, db_index=True)
    scorer_name = models.CharField(max_length=1000, blank=True, default="")
    scorer_ids = models.JSONField(default=list, help_text="Every scorer of the batch, in order.")
    scope_type = models.CharField(max_length=16, choices=ScopeType.choices, default=ScopeType.TRACE)
    span_type = models.CharField(
        max_length=32, blank=True, default="", help_text="Span scope: the span type scored."
    )
    trace_ids = models.JSONField(default=list, help_text="Known trace ids that are scored.")
    unknown_trace_ids = models.JSONField(default=list, blank=True)
    unknown_targets = models.JSONField(
        default=list, blank=True, help_text="Requested (trace, span) targets that do not exist."
    )
    trace_count = models.PositiveIntegerField(default=0)
    score_count = models.PositiveIntegerField(default=0)
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
    rule = models.ForeignKey(
        ScoringRule,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="batches",
        help_text="The rule whose live scoring or backfill made this batch.",
    )
    filter = models.JSONField(
        default=dict, blank=True, help_text="The trace filter a filter-wide batch scores."
    )
    sample_rate = models.FloatField(default=1.0)
    max_cost_usd = models.FloatField(
        null=True, blank=True, help_text="Judge spending after which its Scores are skipped."
    )
    fanning_out = models.BooleanField(
        default=False,
        help_text="A filter-wide batch or backfill still adding Scores, chunk by chunk: "
        "never finished before its last chunk.",
    )
    fanout = models.JSONField(
        default=dict,
        blank=True,
        help_text="Where a fan-out is: its time range, limit, traces considered, last trace.",
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

    @property
    def all_scorer_ids(self) -> list[str]:
        return list(self.scorer_ids) or [self.scorer_id]

    def progress(self) -> dict[str, int]:
        """Counts of this batch's scores by status, plus the total and ``done``.

        ``pending`` is ``queued`` (waiting for a worker) plus ``running`` (a
        worker holds its lease); ``done`` is succeeded + failed + skipped.
        """
        counts = self.scores.aggregate(**_PROGRESS)
        return _with_done(counts, self.score_count or self.trace_count)

    def spending(self) -> dict:
        """What its judges cost so far (``cost_usd``; None when nothing was priced) and how
        many Scores its cost cap skipped (``skipped_by_cap``): one query."""
        return self.scores.aggregate(**_COSTS)

    def progress_by_scorer(self) -> list[dict]:
        """``progress()`` and ``spending()`` per scorer, in the batch's scorer order: one
        query."""
        rows = {
            row.pop("scorer_id"): row
            for row in self.scores.order_by().values("scorer_id").annotate(**_PROGRESS, **_COSTS)
        }
        empty = {**dict.fromkeys(_PROGRESS, 0), "cost_usd": None, "skipped_by_cap": 0}
        return [
            {"scorer_id": scorer_id, **_with_done(rows.get(scorer_id, dict(empty)))}
            for scorer_id in self.all_scorer_ids
        ]


_PENDING = Q(status=ScoreStatus.PENDING)
_PROGRESS = {
    "pending": Count("id", filter=_PENDING),
    "queued": Count("id", filter=_PENDING & Q(lease_expires_at__isnull=True)),
    "running": Count("id", filter=_PENDING & Q(lease_expires_at__isnull=False)),
    "succeeded": Count("id", filter=Q(status=ScoreStatus.SUCCEEDED)),
    "failed": Count("id", filter=Q(status=ScoreStatus.FAILED)),
    "skipped": Count("id", filter=Q(status=ScoreStatus.SKIPPED)),
}


# The reason of a Score skipped by a cost cap starts with this (scoring.costs).
COST_CAP_REASON = "cost cap reached"
_COSTS = {
    "cost_usd": Sum("cost_usd"),
    "skipped_by_cap": Count(
        "id", filter=Q(status=ScoreStatus.SKIPPED, reason__startswith=COST_CAP_REASON)
    ),
}


def _with_done(counts: dict, total: int | None = None) -> dict[str, int]:
    done = counts["succeeded"] + counts["failed"] + counts["skipped"]
    if total is None:
        total = done + counts["pending"]
    return {"total": total, **counts, "done": done}


class ScoreQuerySet(models.QuerySet):
    def newest_first(self):
        return self.order_by("-created_at", "-id")

    def finished(self):
        return self.exclude(status=ScoreStatus.PENDING)


class Score(models.Model):
    """One scorer result for one span of a trace (the root for whole-trace scoring).

    Keeps the scorer's name and version and the span's name and type as they
    were when it ran, and the input/output that was scored, so a score stays
    explainable after the trace or the scorer changes. Exactly one Score per
    (batch, scorer, trace, span): a retried or twice-delivered task updates it
    instead of adding a second. ``skipped`` means the scorer does not apply
    (``reason`` says why); it is never a failure.

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
    span_name = models.CharField(max_length=512, blank=True, default="")
    span_type = models.CharField(max_length=32, blank=True, default="")
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
    cost_usd = models.FloatField(
        null=True, blank=True, help_text="What the judge's calls cost, when priced."
    )
    rule = models.ForeignKey(
        ScoringRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="scores"
    )
    rule_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ScoreQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "scorer_id", "trace", "span_id"],
                name="score_unique_per_batch_target",
            ),
        ]
        indexes = [
            models.Index(fields=["scorer_id", "-created_at"], name="score_scorer_created_idx"),
            models.Index(fields=["trace", "-created_at"], name="score_trace_created_idx"),
            models.Index(fields=["trace", "span_id"], name="score_trace_span_idx"),
            models.Index(fields=["status", "created_at"], name="score_status_created_idx"),
            models.Index(
                fields=["lease_expires_at"],
                name="score_pending_lease_idx",
                condition=Q(status=ScoreStatus.PENDING),
            ),
            # What a batch or rule spent, for its cost cap: summed from the index alone.
            models.Index(
                fields=["batch", "cost_usd"],
                name="score_batch_cost_idx",
                condition=Q(cost_usd__isnull=False),
            ),
            models.Index(
                fields=["rule", "cost_usd"],
                name="score_rule_cost_idx",
                condition=Q(cost_usd__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        value = "—" if self.score is None else f"{self.score:.2f}"
        return f"{self.scorer_id} on {self.trace_id}: {value} ({self.status})"

    def get_absolute_url(self) -> str:
        url = reverse("observability:trace-detail", args=[self.trace_id])
        return f"{url}?span={self.span_id}" if self.span_id else url


class RuleOutcome(models.Model):
    """What one scoring rule did with one trace it considered, and why: the audit.

    One row per (rule, trace). ``outcome`` is pending while its Scores run, then
    scored, failed or skipped from them; sampled out, or skipped before any Score
    (no span of the rule's type, no input or output, cost cap reached), is
    decided at once with ``reason``. ``score`` links the (first) Score it made.
    """

    rule = models.ForeignKey(ScoringRule, on_delete=models.CASCADE, related_name="outcomes")
    rule_version = models.PositiveIntegerField(default=1)
    trace = models.ForeignKey(
        "observability.Trace", on_delete=models.CASCADE, related_name="rule_outcomes"
    )
    outcome = models.CharField(
        max_length=16, choices=RuleOutcomeKind.choices, default=RuleOutcomeKind.PENDING
    )
    reason = models.TextField(blank=True, default="")
    score = models.ForeignKey(
        Score, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    batch = models.ForeignKey(
        ScoringBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    considered_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-considered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "trace"], name="rule_outcome_unique")
        ]
        indexes = [
            models.Index(
                fields=["rule", "outcome", "-considered_at"], name="rule_outcome_kind_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} on {self.trace_id}: {self.outcome}"


class LiveCandidate(models.Model):
    """A trace that got spans and may be finished once ``due_at`` passes with no more.

    Ingest upserts one row per trace with a root span (``due_at`` = now + the
    settle window), so every new span pushes it later; the live sweeper takes
    the due rows and matches the active live rules against their traces.
    """

    trace = models.OneToOneField(
        "observability.Trace", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    due_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.trace_id} due {self.due_at:%H:%M:%S}"


class LiveSweeper(models.Model):
    """The one row that says which live sweeper runs (``holder``) and until when.

    One sweeper at a time holds the lease; ``woken_at`` says a sweeper was
    queued and has not started yet, so busy ingest queues one, not one per export.
    """

    holder = models.CharField(max_length=100, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    woken_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"live sweeper {self.holder or '(idle)'}"
