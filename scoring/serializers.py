"""API shapes of the scoring app (camelCase, as the plan's API is)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from observability.choices import SpanType
from observability.serializers import DurationMsField
from scoring.choices import ScopeType
from scoring.models import Score, ScoringBatch
from scoring.services import (
    MAX_BATCH_SCORERS,
    MAX_BATCH_SCORES,
    MAX_BATCH_TARGETS,
    MAX_BATCH_TRACES,
    InvalidBatchError,
    clean_max_cost,
)
from tracescore.timebounds import iso_schema, storable_datetime

TARGETS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_BATCH_TARGETS,
    "items": {
        "type": "object",
        "required": ["traceId"],
        "properties": {
            "traceId": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
            "spanId": {
                "type": "string",
                "pattern": "^[0-9a-fA-F]{16}$",
                "description": "Omitted: the trace's root span.",
            },
        },
    },
}


@extend_schema_field(TARGETS_SCHEMA)
class TargetsField(serializers.JSONField):
    """A list of ``{traceId, spanId?}``; checked by the service (fast for 50,000 targets)."""


@extend_schema_field({"type": "string", "pattern": "^[0-9a-fA-F]{32}$"})
class TraceIdText(serializers.CharField):
    """A requested trace id; the service checks its shape and names the malformed ones."""


@extend_schema_field({"type": "string", "pattern": "^[^\\u0000]+$"})
class ScorerIdText(serializers.CharField):
    """A scorer id: any text but NUL, which DRF refuses (no id has one)."""


@extend_schema_field({"type": "number", "minimum": 0, "exclusiveMinimum": True, "nullable": True})
class MaxCostField(serializers.Field):
    """A cost cap in US dollars: a positive number, or null for none."""

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, **kwargs)

    def to_internal_value(self, data):
        try:
            return clean_max_cost(data)
        except InvalidBatchError as error:
            raise serializers.ValidationError(str(error)) from None

    def to_representation(self, value):
        return value


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only (DRF also takes 0, 1, "yes"…, which the schema does not)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            raise serializers.ValidationError("Must be true or false.")
        return data


class BatchRequestSerializer(serializers.Serializer):
    """``POST /api/trace-scorers/batch``. Ids and targets are checked by the service.

    Forms: ``{scorerId | scorerIds, traceIds, scopeType: "trace"}`` (each trace's
    root span); ``{scorerIds, scopeType: "span", targets: [{traceId, spanId}]}``
    (exactly those spans); ``{scorerIds, scopeType: "span", traceIds, spanType}``
    (every span of that type in those traces).
    """

    scorerId = ScorerIdText(  # noqa: N815
        required=False,
        # Untrimmed: " " is an unknown scorer (404), not a missing one.
        trim_whitespace=False,
        help_text="Id of a registered scorer (or give scorerIds).",
    )
    scorerIds = serializers.ListField(  # noqa: N815
        child=ScorerIdText(trim_whitespace=False),
        required=False,
        allow_empty=False,
        min_length=1,
        max_length=MAX_BATCH_SCORERS,
        help_text=f"1 to {MAX_BATCH_SCORERS} scorer ids; each scores every target.",
    )
    traceIds = serializers.ListField(  # noqa: N815
        child=TraceIdText(),
        required=False,
        allow_empty=False,
        min_length=1,
        max_length=MAX_BATCH_TRACES,
        help_text=f"1 to {MAX_BATCH_TRACES:,} trace ids (32 hex characters). Repeats count once.",
    )
    targets = TargetsField(
        required=False,
        help_text=f"scopeType 'span': 1 to {MAX_BATCH_TARGETS:,} spans, in at most "
        f"{MAX_BATCH_TRACES:,} traces. A target without spanId is the trace's root span.",
    )
    scopeType = serializers.ChoiceField(  # noqa: N815
        choices=ScopeType.choices,
        default=ScopeType.TRACE,
        help_text="'trace': each trace's root span, for the whole trace; 'span': the "
        "spans given by targets, or by traceIds and spanType.",
    )
    spanType = serializers.ChoiceField(  # noqa: N815
        choices=SpanType.choices,
        required=False,
        help_text="scopeType 'span' with traceIds: score every span of this type.",
    )
    maxCostUsd = MaxCostField(  # noqa: N815
        required=False,
        help_text="A cost cap in US dollars: once the batch's judges have spent it, its "
        "remaining judge Scores end 'skipped' with the reason \"cost cap reached\".",
    )
    estimate = StrictBooleanField(
        required=False,
        default=False,
        help_text="true: start nothing; answer 200 with the estimated tokens and cost.",
    )

    def validate(self, attrs):
        if ("scorerId" in attrs) == ("scorerIds" in attrs):
            raise serializers.ValidationError("Give scorerId or scorerIds (exactly one of them).")
        if "traceIds" not in attrs and "targets" not in attrs:
            raise serializers.ValidationError({"traceIds": ["This field is required."]})
        return attrs

    def service_kwargs(self) -> dict:
        data = self.validated_data
        return {
            "scorer_ids": data.get("scorerIds") or [data["scorerId"]],
            "trace_ids": data.get("traceIds"),
            "targets": data.get("targets"),
            "scope_type": data["scopeType"],
            "span_type": data.get("spanType", ""),
        }


class ScorerPlanSerializer(serializers.Serializer):
    scorerId = serializers.CharField()  # noqa: N815
    scorerName = serializers.CharField()  # noqa: N815
    scoreCount = serializers.IntegerField(help_text="Targets this scorer scores.")  # noqa: N815
    skipCount = serializers.IntegerField(  # noqa: N815
        help_text="Of those, targets it does not apply to: they end 'skipped', not failed."
    )


class BatchPlanSerializer(serializers.Serializer):
    """What a batch request scores, before anything runs."""

    traceCount = serializers.IntegerField()  # noqa: N815
    scoreCount = serializers.IntegerField(  # noqa: N815
        help_text=f"Scores the batch makes: targets × scorers, at most {MAX_BATCH_SCORES:,}."
    )
    scopeType = serializers.CharField()  # noqa: N815
    spanType = serializers.CharField(allow_blank=True)  # noqa: N815
    scorers = ScorerPlanSerializer(many=True)
    unknownTraceIds = serializers.ListField(child=serializers.CharField())  # noqa: N815
    unknownTargets = serializers.ListField(  # noqa: N815
        child=serializers.DictField(child=serializers.CharField())
    )


class ScorerEstimateSerializer(serializers.Serializer):
    scorerId = serializers.CharField()  # noqa: N815
    scores = serializers.IntegerField(help_text="Scores it would run (targets it applies to).")
    promptTokens = serializers.IntegerField()  # noqa: N815
    completionTokens = serializers.IntegerField()  # noqa: N815
    costUsd = serializers.FloatField(  # noqa: N815
        allow_null=True, help_text="Null when the judge model has no price."
    )
    priced = serializers.BooleanField()


class BatchEstimateSerializer(serializers.Serializer):
    """Tokens counted with tiktoken on the prompts the judges would send (docs/scorers.md)."""

    scorers = ScorerEstimateSerializer(many=True)
    promptTokens = serializers.IntegerField()  # noqa: N815
    completionTokens = serializers.IntegerField()  # noqa: N815
    costUsd = serializers.FloatField(  # noqa: N815
        allow_null=True, help_text="Null when a judge's model has no price."
    )
    model = serializers.CharField(allow_null=True, help_text="The judge model; null: no judge.")
    encoding = serializers.CharField(allow_null=True, help_text="The tiktoken encoding counted.")
    sampled = serializers.IntegerField(
        help_text="0: every target was counted; else the targets counted, the rest "
        "extrapolated from them."
    )


class BatchEstimatedSerializer(BatchPlanSerializer):
    estimate = BatchEstimateSerializer()


class BatchPreviewSerializer(BatchPlanSerializer):
    estimate = BatchEstimateSerializer(required=False, help_text='With "estimate": true.')


def estimate_body(estimate) -> dict:
    """The JSON answer describing a ``costs.BatchEstimate``."""
    return {
        "scorers": [
            {
                "scorerId": row.scorer_id,
                "scores": row.scores,
                "promptTokens": row.prompt_tokens,
                "completionTokens": row.completion_tokens,
                "costUsd": row.cost_usd,
                "priced": row.priced,
            }
            for row in estimate.scorers
        ],
        "promptTokens": estimate.prompt_tokens,
        "completionTokens": estimate.completion_tokens,
        "costUsd": estimate.cost_usd,
        "model": estimate.model,
        "encoding": estimate.encoding,
        "sampled": estimate.sampled,
    }


class BatchStartedSerializer(BatchPlanSerializer):
    message = serializers.CharField()
    status = serializers.CharField()
    batchId = serializers.UUIDField()  # noqa: N815


def plan_body(plan) -> dict:
    """The JSON answer describing a ``services.BatchPlan``."""
    return {
        "traceCount": len(plan.trace_ids),
        "scoreCount": plan.score_count,
        "scopeType": plan.scope_type,
        "spanType": plan.span_type,
        "scorers": [
            {
                "scorerId": row["scorer"].id,
                "scorerName": row["scorer"].name,
                "scoreCount": row["score_count"],
                "skipCount": row["skip_count"],
            }
            for row in plan.per_scorer()
        ],
        "unknownTraceIds": plan.unknown_trace_ids,
        "unknownTargets": plan.unknown_targets,
    }


def started_message(plan) -> str:
    """ "Scoring started for 3 traces", as the plan words it; spans and scorers named when
    there is more than that."""
    traces = len(plan.trace_ids)
    text = f"Scoring started for {traces} trace{'s' if traces != 1 else ''}"
    if plan.scope_type == ScopeType.SPAN:
        spans = plan.target_count
        text = f"Scoring started for {spans} span{'s' if spans != 1 else ''} in {traces} trace"
        text += "s" if traces != 1 else ""
    if len(plan.scorers) > 1:
        text += f" with {len(plan.scorers)} scorers"
    return text


class ScorerProgressSerializer(serializers.Serializer):
    scorerId = serializers.CharField(source="scorer_id")  # noqa: N815
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    skippedByCap = serializers.IntegerField(source="skipped_by_cap")  # noqa: N815
    costUsd = serializers.FloatField(  # noqa: N815
        source="cost_usd", allow_null=True, help_text="What its judge Scores cost so far."
    )


class BatchSerializer(serializers.ModelSerializer):
    batchId = serializers.UUIDField(source="id")  # noqa: N815
    scorerId = serializers.CharField(source="scorer_id", help_text="The first scorer.")  # noqa: N815
    scorerName = serializers.CharField(source="scorer_name")  # noqa: N815
    scorerIds = serializers.ListField(  # noqa: N815
        source="all_scorer_ids", child=serializers.CharField()
    )
    scopeType = serializers.CharField(source="scope_type")  # noqa: N815
    spanType = serializers.CharField(source="span_type")  # noqa: N815
    traceCount = serializers.IntegerField(source="trace_count")  # noqa: N815
    total = serializers.SerializerMethodField(help_text="Scores of the batch.")
    pending = serializers.SerializerMethodField(help_text="Queued plus running.")
    queued = serializers.SerializerMethodField(help_text="Pending; no worker has started it.")
    running = serializers.SerializerMethodField(help_text="Pending; a worker is scoring it.")
    succeeded = serializers.SerializerMethodField()
    failed = serializers.SerializerMethodField()
    skipped = serializers.SerializerMethodField(
        help_text="The scorer does not apply to the span; never a failure."
    )
    skippedByCap = serializers.SerializerMethodField(  # noqa: N815
        help_text="Of the skipped, Scores the cost cap stopped."
    )
    costUsd = serializers.SerializerMethodField(  # noqa: N815
        help_text="What the batch's judges cost so far, in US dollars; null: nothing priced."
    )
    maxCostUsd = serializers.FloatField(  # noqa: N815
        source="max_cost_usd", allow_null=True, help_text="The cost cap; null: none."
    )
    status = serializers.SerializerMethodField()
    perScorer = serializers.SerializerMethodField()  # noqa: N815
    unknownTraceIds = serializers.ListField(source="unknown_trace_ids")  # noqa: N815
    unknownTargets = serializers.ListField(source="unknown_targets")  # noqa: N815
    createdAt = serializers.DateTimeField(source="created_at")  # noqa: N815
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)  # noqa: N815
    ruleId = serializers.IntegerField(  # noqa: N815
        source="rule_id",
        allow_null=True,
        help_text="The rule whose live scoring or backfill made it.",
    )
    fanningOut = serializers.BooleanField(  # noqa: N815
        source="fanning_out",
        help_text="A filter-wide batch or backfill still adding Scores: its counts grow and "
        "it is running until the last chunk has landed.",
    )

    class Meta:
        model = ScoringBatch
        fields = [
            "batchId",
            "scorerId",
            "scorerName",
            "scorerIds",
            "scopeType",
            "spanType",
            "status",
            "traceCount",
            "total",
            "pending",
            "queued",
            "running",
            "succeeded",
            "failed",
            "skipped",
            "skippedByCap",
            "costUsd",
            "maxCostUsd",
            "perScorer",
            "unknownTraceIds",
            "unknownTargets",
            "createdAt",
            "finishedAt",
            "ruleId",
            "fanningOut",
        ]

    def _progress(self, batch) -> dict:
        if not hasattr(batch, "_progress_cache"):
            batch._progress_cache = batch.progress()
        return batch._progress_cache

    def get_total(self, batch) -> int:
        return self._progress(batch)["total"]

    def get_pending(self, batch) -> int:
        return self._progress(batch)["pending"]

    def get_queued(self, batch) -> int:
        return self._progress(batch)["queued"]

    def get_running(self, batch) -> int:
        return self._progress(batch)["running"]

    def get_succeeded(self, batch) -> int:
        return self._progress(batch)["succeeded"]

    def get_failed(self, batch) -> int:
        return self._progress(batch)["failed"]

    def get_skipped(self, batch) -> int:
        return self._progress(batch)["skipped"]

    def _spending(self, batch) -> dict:
        if not hasattr(batch, "_spending_cache"):
            batch._spending_cache = batch.spending()
        return batch._spending_cache

    def get_skippedByCap(self, batch) -> int:  # noqa: N802
        return self._spending(batch)["skipped_by_cap"]

    def get_costUsd(self, batch) -> float | None:  # noqa: N802
        return self._spending(batch)["cost_usd"]

    def get_status(self, batch) -> str:
        return "running" if batch.fanning_out or self._progress(batch)["pending"] else "finished"

    @extend_schema_field(ScorerProgressSerializer(many=True))
    def get_perScorer(self, batch) -> list:  # noqa: N802
        return ScorerProgressSerializer(batch.progress_by_scorer(), many=True).data


class ScoreSerializer(serializers.ModelSerializer):
    """One result, with links to its trace in the API and in the web UI."""

    id = serializers.IntegerField()
    scorerId = serializers.CharField(source="scorer_id")  # noqa: N815
    scorerName = serializers.CharField(source="scorer_name")  # noqa: N815
    scorerVersion = serializers.CharField(source="scorer_version")  # noqa: N815
    traceId = serializers.CharField(source="trace_id")  # noqa: N815
    spanId = serializers.CharField(  # noqa: N815
        source="span_id", help_text="The scored span (the root for whole-trace scoring)."
    )
    spanName = serializers.CharField(source="span_name")  # noqa: N815
    spanType = serializers.CharField(source="span_type")  # noqa: N815
    batchId = serializers.UUIDField(source="batch_id", allow_null=True)  # noqa: N815
    ruleId = serializers.IntegerField(  # noqa: N815
        source="rule_id",
        allow_null=True,
        help_text="The scoring rule that made it (source 'rule').",
    )
    ruleVersion = serializers.IntegerField(  # noqa: N815
        source="rule_version", allow_null=True, help_text="The rule's version it ran under."
    )
    durationMs = DurationMsField(source="duration_ms")  # noqa: N815
    createdAt = serializers.DateTimeField(source="created_at")  # noqa: N815
    startedAt = serializers.DateTimeField(  # noqa: N815
        source="started_at",
        allow_null=True,
        help_text="When a worker started this attempt; null while the score is queued.",
    )
    finishedAt = serializers.DateTimeField(  # noqa: N815
        source="finished_at", allow_null=True, help_text="Null while the score is pending."
    )
    traceUrl = serializers.SerializerMethodField()  # noqa: N815
    traceWebUrl = serializers.SerializerMethodField()  # noqa: N815

    class Meta:
        model = Score
        fields = [
            "id",
            "scorerId",
            "scorerName",
            "scorerVersion",
            "traceId",
            "spanId",
            "spanName",
            "spanType",
            "score",
            "reason",
            "status",
            "error",
            "source",
            "batchId",
            "ruleId",
            "ruleVersion",
            "durationMs",
            "createdAt",
            "startedAt",
            "finishedAt",
            "traceUrl",
            "traceWebUrl",
        ]

    def get_traceUrl(self, score) -> str:  # noqa: N802
        return reverse("api-trace-detail", args=[score.trace_id], request=self.context["request"])

    def get_traceWebUrl(self, score) -> str:  # noqa: N802
        """The trace page, opened on the scored span."""
        url = reverse(
            "observability:trace-detail", args=[score.trace_id], request=self.context["request"]
        )
        return f"{url}?span={score.span_id}" if score.span_id else url


class ScoreDetailSerializer(ScoreSerializer):
    class Meta(ScoreSerializer.Meta):
        fields = [*ScoreSerializer.Meta.fields, "details", "input", "output"]


class ScorerSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    kind = serializers.CharField()
    version = serializers.CharField()
    minScore = serializers.FloatField(source="min_score")  # noqa: N815
    maxScore = serializers.FloatField(source="max_score")  # noqa: N815
    higherIsBetter = serializers.BooleanField(source="higher_is_better")  # noqa: N815
    available = serializers.BooleanField()
    unavailableReason = serializers.CharField(source="unavailable_reason")  # noqa: N815
    resultCount = serializers.IntegerField(source="stats.count")  # noqa: N815
    failedCount = serializers.IntegerField(source="stats.failed")  # noqa: N815
    skippedCount = serializers.IntegerField(source="stats.skipped")  # noqa: N815
    spanTypes = serializers.SerializerMethodField(  # noqa: N815
        help_text="Span types the scorer applies to when spans are scored; null: any."
    )
    meanScore = serializers.FloatField(source="stats.mean", allow_null=True)  # noqa: N815
    lastRunAt = serializers.DateTimeField(source="stats.last_run", allow_null=True)  # noqa: N815
    resultsUrl = serializers.CharField(source="results_url")  # noqa: N815

    def get_spanTypes(self, row) -> list[str] | None:  # noqa: N802
        return sorted(row.span_types) if row.span_types is not None else None


# --- Scoring rules -----------------------------------------------------------------

RULE_TARGETS = ["trace", *SpanType.values]
NAME_PATTERN = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
RULE_FILTER_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "The trace list's fields; every given one must match. Empty: every trace.",
    "properties": {
        "name": {
            "type": "string",
            "maxLength": 512,
            "pattern": "^[^\\u0000]*$",
            "description": "Part of the trace name, any case.",
        },
        "type": {"type": "string", "enum": SpanType.values, "description": "Root span type."},
        "status": {"type": "string", "enum": ["unset", "ok", "error"]},
        "service": {
            "type": "string",
            "maxLength": 256,
            "pattern": "^[^\\u0000]*$",
            "description": "The service name, exactly.",
        },
        "metadata": {
            "type": "object",
            "maxProperties": 20,
            "additionalProperties": {
                "type": "string",
                "maxLength": 1000,
                "pattern": "^[^\\u0000]*$",
            },
            "description": "{key: value}: the trace's metadata has every key with that value. "
            "Keys: 1 to 200 characters, without '=' or NUL (as in the trace list's key=value).",
        },
        "minDurationMs": {"type": "number", "minimum": 0, "maximum": 10**12},
        "maxDurationMs": {
            "type": "number",
            "minimum": 0,
            "maximum": 10**12,
            "description": "Inclusive; not below minDurationMs.",
        },
    },
}


@extend_schema_field(RULE_FILTER_SCHEMA)
class RuleFilterField(serializers.JSONField):
    """A rule filter; checked by ``scoring.rules.clean_filter``."""


@extend_schema_field({"type": "string", "maxLength": 200, "pattern": NAME_PATTERN})
class RuleNameText(serializers.CharField):
    """A rule name: not blank, no NUL."""


@extend_schema_field(
    {
        **iso_schema("date-time", description="An ISO 8601 datetime, in the years 1900 to 9000."),
        "nullable": True,
    }
)
class StorableDateTimeField(serializers.DateTimeField):
    """A datetime in the years 1900 to 9000, in UTC."""

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        try:
            return storable_datetime(parsed)
        except (ValueError, OverflowError) as error:
            raise serializers.ValidationError(str(error)) from None


class RuleStatsSerializer(serializers.Serializer):
    considered = serializers.IntegerField()
    scored = serializers.IntegerField()
    sampledOut = serializers.IntegerField(source="sampled_out")  # noqa: N815
    skipped = serializers.IntegerField()
    failed = serializers.IntegerField()
    pending = serializers.IntegerField()


class RuleSerializer(serializers.Serializer):
    """A scoring rule as the API shows it."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    scorerIds = serializers.ListField(source="scorer_ids", child=serializers.CharField())  # noqa: N815
    filter = RuleFilterField()
    target = serializers.CharField(help_text="'trace' (the root span) or a span type.")
    sampleRate = serializers.FloatField(source="sample_rate")  # noqa: N815
    live = serializers.BooleanField()
    active = serializers.BooleanField()
    maxCostUsd = serializers.FloatField(source="max_cost_usd", allow_null=True)  # noqa: N815
    version = serializers.IntegerField()
    stats = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")  # noqa: N815
    updatedAt = serializers.DateTimeField(source="updated_at")  # noqa: N815
    url = serializers.SerializerMethodField()

    @extend_schema_field(RuleStatsSerializer)
    def get_stats(self, rule) -> dict:
        from scoring import rules

        stats = self.context.get("stats", {}).get(rule.pk)
        if stats is None:
            stats = rules.rule_stats(rule)
        return RuleStatsSerializer(stats).data

    def get_url(self, rule) -> str:
        return reverse("api-rule-detail", args=[rule.pk], request=self.context.get("request"))


class RuleWriteSerializer(serializers.Serializer):
    """``POST /api/scoring-rules`` (name and scorerIds required) and ``PATCH`` (any field)."""

    name = RuleNameText(max_length=200, trim_whitespace=False, help_text="Shown on the rules page.")
    scorerIds = serializers.ListField(  # noqa: N815
        child=ScorerIdText(trim_whitespace=False, max_length=100),
        min_length=1,
        max_length=MAX_BATCH_SCORERS,
        help_text="Registered scorer ids; each scores every target.",
    )
    filter = RuleFilterField(required=False, help_text="Which traces the rule scores.")
    target = serializers.ChoiceField(
        choices=RULE_TARGETS,
        required=False,
        help_text="'trace': each trace's root span, for the whole trace; a span type: "
        "every span of that type.",
    )
    sampleRate = serializers.FloatField(  # noqa: N815
        min_value=0, max_value=1, required=False, help_text="0..1, decided from the trace id."
    )
    live = serializers.BooleanField(required=False, help_text="Score new traces once finished.")
    active = serializers.BooleanField(required=False, help_text="false: paused.")
    maxCostUsd = serializers.FloatField(  # noqa: N815
        min_value=0,
        max_value=1e9,
        allow_null=True,
        required=False,
        help_text="Judge spending (US dollars) after which the rule's Scores are skipped.",
    )

    FIELDS = {
        "name": "name",
        "scorerIds": "scorer_ids",
        "filter": "filter",
        "target": "target",
        "sampleRate": "sample_rate",
        "live": "live",
        "active": "active",
        "maxCostUsd": "max_cost_usd",
    }

    def service_kwargs(self) -> dict:
        return {self.FIELDS[k]: v for k, v in self.validated_data.items()}


class RuleOutcomeSerializer(serializers.Serializer):
    traceId = serializers.CharField(source="trace_id")  # noqa: N815
    outcome = serializers.ChoiceField(
        choices=["pending", "scored", "sampled_out", "skipped", "failed"]
    )
    reason = serializers.CharField()
    scoreId = serializers.IntegerField(source="score_id", allow_null=True)  # noqa: N815
    batchId = serializers.UUIDField(source="batch_id", allow_null=True)  # noqa: N815
    ruleVersion = serializers.IntegerField(source="rule_version")  # noqa: N815
    consideredAt = serializers.DateTimeField(source="considered_at")  # noqa: N815
    updatedAt = serializers.DateTimeField(source="updated_at")  # noqa: N815


class BackfillRequestSerializer(serializers.Serializer):
    startedAfter = StorableDateTimeField(  # noqa: N815
        required=False, allow_null=True, help_text="Traces that started at or after this."
    )
    startedBefore = StorableDateTimeField(  # noqa: N815
        required=False,
        allow_null=True,
        help_text="Traces that started before this (after startedAfter).",
    )
    limit = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=1_000_000,
        help_text="At most this many traces, newest first (default and most: 1,000,000).",
    )


class FilteredBatchRequestSerializer(serializers.Serializer):
    """``POST /api/trace-scorers/batch/by-filter``: score every trace a filter matches."""

    scorerIds = serializers.ListField(  # noqa: N815
        child=ScorerIdText(trim_whitespace=False, max_length=100),
        min_length=1,
        max_length=MAX_BATCH_SCORERS,
    )
    filter = RuleFilterField(help_text="The trace list's fields, as a rule's filter.")
    target = serializers.ChoiceField(choices=RULE_TARGETS, default="trace")
    sampleRate = serializers.FloatField(min_value=0, max_value=1, default=1.0)  # noqa: N815
    maxCostUsd = serializers.FloatField(  # noqa: N815
        min_value=0, max_value=1e9, allow_null=True, required=False
    )
    limit = (
        BackfillRequestSerializer()
        .fields["limit"]
        .__class__(required=False, allow_null=True, min_value=1, max_value=1_000_000)
    )
    startedAfter = serializers.DateTimeField(required=False, allow_null=True)  # noqa: N815
    startedBefore = serializers.DateTimeField(required=False, allow_null=True)  # noqa: N815


class FanOutStartedSerializer(serializers.Serializer):
    batchId = serializers.UUIDField()  # noqa: N815
    status = serializers.CharField(help_text="'fanning_out': Scores are being added.")
    message = serializers.CharField()
    batchUrl = serializers.CharField()  # noqa: N815


class RetriedSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Failed Scores queued again.")
