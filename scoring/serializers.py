"""API shapes of the scoring app (camelCase, as the plan's API is)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from observability.serializers import DurationMsField
from scoring.choices import ScopeType
from scoring.models import Score, ScoringBatch
from scoring.services import MAX_BATCH_TRACES


@extend_schema_field({"type": "string", "pattern": "^[0-9a-fA-F]{32}$"})
class TraceIdText(serializers.CharField):
    """A requested trace id; the service checks its shape and names the malformed ones."""


@extend_schema_field({"type": "string", "pattern": "^[^\\u0000]+$"})
class ScorerIdText(serializers.CharField):
    """A scorer id: any text but NUL, which DRF refuses (no id has one)."""


class BatchRequestSerializer(serializers.Serializer):
    """``POST /api/trace-scorers/batch``. Trace ids are checked by the service."""

    scorerId = ScorerIdText(  # noqa: N815
        # Untrimmed: " " is an unknown scorer (404), not a missing one.
        trim_whitespace=False,
        help_text="Id of a registered scorer.",
    )
    traceIds = serializers.ListField(  # noqa: N815
        child=TraceIdText(),
        allow_empty=False,
        min_length=1,
        max_length=MAX_BATCH_TRACES,
        help_text=f"1 to {MAX_BATCH_TRACES:,} trace ids (32 hex characters). Repeats count once.",
    )
    scopeType = serializers.ChoiceField(  # noqa: N815
        choices=ScopeType.choices, default=ScopeType.TRACE
    )


class BatchStartedSerializer(serializers.Serializer):
    message = serializers.CharField()
    traceCount = serializers.IntegerField()  # noqa: N815
    status = serializers.CharField()
    batchId = serializers.UUIDField()  # noqa: N815
    unknownTraceIds = serializers.ListField(child=serializers.CharField())  # noqa: N815


class BatchSerializer(serializers.ModelSerializer):
    batchId = serializers.UUIDField(source="id")  # noqa: N815
    scorerId = serializers.CharField(source="scorer_id")  # noqa: N815
    scorerName = serializers.CharField(source="scorer_name")  # noqa: N815
    total = serializers.IntegerField(source="trace_count")
    pending = serializers.SerializerMethodField(help_text="Queued plus running.")
    queued = serializers.SerializerMethodField(help_text="Pending; no worker has started it.")
    running = serializers.SerializerMethodField(help_text="Pending; a worker is scoring it.")
    succeeded = serializers.SerializerMethodField()
    failed = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    unknownTraceIds = serializers.ListField(source="unknown_trace_ids")  # noqa: N815
    createdAt = serializers.DateTimeField(source="created_at")  # noqa: N815
    finishedAt = serializers.DateTimeField(source="finished_at", allow_null=True)  # noqa: N815

    class Meta:
        model = ScoringBatch
        fields = [
            "batchId",
            "scorerId",
            "scorerName",
            "status",
            "total",
            "pending",
            "queued",
            "running",
            "succeeded",
            "failed",
            "unknownTraceIds",
            "createdAt",
            "finishedAt",
        ]

    def _progress(self, batch) -> dict:
        if not hasattr(batch, "_progress_cache"):
            batch._progress_cache = batch.progress()
        return batch._progress_cache

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

    def get_status(self, batch) -> str:
        return "running" if self._progress(batch)["pending"] else "finished"


class ScoreSerializer(serializers.ModelSerializer):
    """One result, with links to its trace in the API and in the web UI."""

    id = serializers.IntegerField()
    scorerId = serializers.CharField(source="scorer_id")  # noqa: N815
    scorerName = serializers.CharField(source="scorer_name")  # noqa: N815
    scorerVersion = serializers.CharField(source="scorer_version")  # noqa: N815
    traceId = serializers.CharField(source="trace_id")  # noqa: N815
    spanId = serializers.CharField(source="span_id")  # noqa: N815
    batchId = serializers.UUIDField(source="batch_id", allow_null=True)  # noqa: N815
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
            "score",
            "reason",
            "status",
            "error",
            "source",
            "batchId",
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
        return reverse(
            "observability:trace-detail", args=[score.trace_id], request=self.context["request"]
        )


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
    meanScore = serializers.FloatField(source="stats.mean", allow_null=True)  # noqa: N815
    lastRunAt = serializers.DateTimeField(source="stats.last_run", allow_null=True)  # noqa: N815
    resultsUrl = serializers.CharField(source="results_url")  # noqa: N815
