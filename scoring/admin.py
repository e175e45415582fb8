"""Admin pages for inspecting scores and batches (read-only: workers write them)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from observability.admin import ReadOnlyModelAdmin, _pretty_json
from scoring.models import Score, ScoringBatch


@admin.register(Score)
class ScoreAdmin(ReadOnlyModelAdmin):
    list_display = (
        "scorer_id",
        "trace_link",
        "span_id",
        "span_type",
        "value",
        "status",
        "reason_excerpt",
        "source",
        "created_at",
    )
    list_filter = ("scorer_id", "status", "span_type", "source", "created_at")
    search_fields = ("trace__trace_id", "span_id", "scorer_id")
    date_hierarchy = "created_at"
    list_select_related = ("trace",)
    fields = (
        "scorer_id",
        "scorer_name",
        "scorer_version",
        "trace_link",
        "span_id",
        "span_name",
        "span_type",
        "score",
        "status",
        "reason",
        "error",
        "source",
        "batch",
        "attempts",
        "duration_ms",
        "created_at",
        "queued_at",
        "started_at",
        "claimed_by",
        "lease_expires_at",
        "finished_at",
        "details_json",
        "input_json",
        "output_json",
    )
    readonly_fields = fields

    @admin.display(description="trace", ordering="trace")
    def trace_link(self, score: Score) -> str:
        url = reverse("observability:trace-detail", args=[score.trace_id])
        return format_html('<a href="{}">{}</a>', url, score.trace_id)

    @admin.display(description="score", ordering="score")
    def value(self, score: Score) -> str:
        return "—" if score.score is None else f"{score.score:.2f}"

    @admin.display(description="reason")
    def reason_excerpt(self, score: Score) -> str:
        return Truncator(score.reason or score.error).chars(90)

    @admin.display(description="details")
    def details_json(self, score: Score):
        return _pretty_json(score.details)

    @admin.display(description="input scored")
    def input_json(self, score: Score):
        return _pretty_json(score.input)

    @admin.display(description="output scored")
    def output_json(self, score: Score):
        return _pretty_json(score.output)


@admin.register(ScoringBatch)
class ScoringBatchAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "scorer_name",
        "scope_type",
        "trace_count",
        "score_count",
        "progress_text",
        "created_by",
        "created_at",
    )
    list_filter = ("scorer_id", "created_at")
    search_fields = ("id", "scorer_id")
    list_select_related = ("created_by",)
    fields = (
        "id",
        "scorer_id",
        "scorer_name",
        "scorer_ids",
        "scope_type",
        "span_type",
        "trace_count",
        "score_count",
        "progress_text",
        "scores_link",
        "unknown_trace_ids",
        "unknown_targets",
        "created_by",
        "created_at",
        "finished_at",
    )
    readonly_fields = fields

    @admin.display(description="progress")
    def progress_text(self, batch: ScoringBatch) -> str:
        p = batch.progress()
        return (
            f"{p['succeeded']} succeeded, {p['failed']} failed, {p['skipped']} skipped, "
            f"{p['pending']} pending "
            f"({p['queued']} queued, {p['running']} running)"
        )

    @admin.display(description="scores")
    def scores_link(self, batch: ScoringBatch) -> str:
        url = f"{reverse('admin:scoring_score_changelist')}?batch__id__exact={batch.pk}"
        return format_html('<a href="{}">{} scores</a>', url, batch.trace_count)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser
