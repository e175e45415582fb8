"""Admin pages for inspecting scores and batches (read-only: workers write them)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from observability.admin import ReadOnlyModelAdmin, _pretty_json
from scoring import rules
from scoring.models import RuleOutcome, Score, ScoringBatch, ScoringRule, ScoringRuleVersion


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
        "rule",
        "created_at",
    )
    list_filter = ("scorer_id", "status", "span_type", "source", "rule", "created_at")
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
        "rule",
        "rule_version",
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
        "rule",
        "filter",
        "sample_rate",
        "max_cost_usd",
        "fanning_out",
        "fanout",
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


class ScoringRuleVersionInline(admin.TabularInline):
    model = ScoringRuleVersion
    fields = ("version", "scorer_ids", "filter", "target", "sample_rate", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ScoringRule)
class ScoringRuleAdmin(ReadOnlyModelAdmin):
    """Rules are written through the rules pages and the API (which keep their versions);
    the admin shows them, their versions and their outcome counts."""

    list_display = ("name", "scorers", "target", "sample_rate", "live", "active", "version")
    list_filter = ("active", "live", "target")
    search_fields = ("name",)
    fields = (
        "name",
        "scorer_ids",
        "filter",
        "target",
        "sample_rate",
        "live",
        "active",
        "max_cost_usd",
        "version",
        "stats_text",
        "outcomes_link",
        "created_by",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [ScoringRuleVersionInline]

    @admin.display(description="scorers")
    def scorers(self, rule: ScoringRule) -> str:
        return ", ".join(rule.scorer_ids)

    @admin.display(description="outcomes")
    def stats_text(self, rule: ScoringRule) -> str:
        stats = rules.rule_stats(rule)
        return ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in stats.items())

    @admin.display(description="audit")
    def outcomes_link(self, rule: ScoringRule) -> str:
        url = f"{reverse('admin:scoring_ruleoutcome_changelist')}?rule__id__exact={rule.pk}"
        return format_html('<a href="{}">Outcomes of this rule</a>', url)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


@admin.register(RuleOutcome)
class RuleOutcomeAdmin(ReadOnlyModelAdmin):
    list_display = ("rule", "trace_link", "outcome", "reason", "rule_version", "considered_at")
    list_filter = ("outcome", "rule")
    search_fields = ("trace__trace_id",)
    list_select_related = ("rule",)
    fields = (
        "rule",
        "rule_version",
        "trace_link",
        "outcome",
        "reason",
        "score",
        "batch",
        "considered_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="trace", ordering="trace")
    def trace_link(self, outcome: RuleOutcome) -> str:
        url = reverse("observability:trace-detail", args=[outcome.trace_id])
        return format_html('<a href="{}">{}</a>', url, outcome.trace_id)
