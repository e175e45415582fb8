"""Output serializers of the trace API (camelCase, read-only)."""

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from observability.models import LogRecord, Span, Trace

# Field names are the API's camelCase names.
# ruff: noqa: N815


class DurationMsField(serializers.FloatField):
    """Milliseconds rounded to 0.1 ms: timestamps are microseconds, the rest is float noise."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("help_text", "Duration in milliseconds, to 0.1 ms.")
        super().__init__(**kwargs)

    def to_representation(self, value):
        return round(float(value), 1)


class TraceSerializer(serializers.ModelSerializer):
    """One trace in the list: the summary kept on the Trace row, no spans."""

    traceId = serializers.CharField(source="trace_id")
    spanType = serializers.CharField(source="span_type")
    startedAt = serializers.DateTimeField(
        source="started_at", allow_null=True, help_text="Null until the first span is stored."
    )
    endedAt = serializers.DateTimeField(source="ended_at", allow_null=True)
    durationMs = DurationMsField(source="duration_ms")
    spanCount = serializers.IntegerField(source="span_count")
    hasError = serializers.BooleanField(source="has_error")
    inputTokens = serializers.IntegerField(source="input_tokens")
    outputTokens = serializers.IntegerField(source="output_tokens")
    url = serializers.SerializerMethodField(help_text="This trace in the API, with its spans.")
    webUrl = serializers.SerializerMethodField(help_text="This trace's page in the web UI.")

    class Meta:
        model = Trace
        fields = [
            "traceId",
            "name",
            "spanType",
            "status",
            "startedAt",
            "endedAt",
            "durationMs",
            "spanCount",
            "hasError",
            "inputTokens",
            "outputTokens",
            "url",
            "webUrl",
        ]
        read_only_fields = fields

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, trace: Trace) -> str:
        return self._absolute(reverse("api-trace-detail", args=[trace.trace_id]))

    @extend_schema_field(OpenApiTypes.URI)
    def get_webUrl(self, trace: Trace) -> str:
        return self._absolute(trace.get_absolute_url())


class SpanSerializer(serializers.ModelSerializer):
    """One span with everything it carries; ``input``/``output``/``attributes`` are JSON as sent."""

    spanId = serializers.CharField(source="span_id")
    parentSpanId = serializers.CharField(source="parent_span_id", allow_null=True)
    spanType = serializers.CharField(source="span_type")
    errorMessage = serializers.CharField(source="error_message")
    startedAt = serializers.DateTimeField(source="started_at")
    endedAt = serializers.DateTimeField(source="ended_at", allow_null=True)
    durationMs = DurationMsField(source="duration_ms")
    input = serializers.JSONField(allow_null=True)
    output = serializers.JSONField(allow_null=True)
    attributes = serializers.JSONField()
    events = serializers.JSONField(help_text="Span events as sent, such as exceptions.")
    resource = serializers.JSONField(help_text="Resource attributes, such as service.name.")
    inputTokens = serializers.IntegerField(source="input_tokens", allow_null=True)
    outputTokens = serializers.IntegerField(source="output_tokens", allow_null=True)

    class Meta:
        model = Span
        fields = [
            "spanId",
            "parentSpanId",
            "name",
            "spanType",
            "status",
            "errorMessage",
            "startedAt",
            "endedAt",
            "durationMs",
            "input",
            "output",
            "attributes",
            "events",
            "resource",
            "model",
            "inputTokens",
            "outputTokens",
        ]
        read_only_fields = fields


class LogRecordSerializer(serializers.ModelSerializer):
    """One OTLP log record of the trace; ``body`` is text or JSON as sent."""

    spanId = serializers.CharField(
        source="span_id", help_text="The span it was written in; empty for none."
    )
    observedAt = serializers.DateTimeField(source="observed_at", allow_null=True)
    severityNumber = serializers.IntegerField(
        source="severity_number", help_text="OTLP severity, 1-24; 0 when unset."
    )
    severityText = serializers.CharField(source="severity_label")
    eventName = serializers.CharField(source="event_name")
    body = serializers.JSONField(allow_null=True)
    attributes = serializers.JSONField()
    resource = serializers.JSONField()
    scopeName = serializers.CharField(source="scope_name")

    class Meta:
        model = LogRecord
        fields = [
            "spanId",
            "time",
            "observedAt",
            "severityNumber",
            "severityText",
            "eventName",
            "body",
            "attributes",
            "resource",
            "scopeName",
        ]
        read_only_fields = fields


class TreeSpanSerializer(SpanSerializer):
    """A span placed in its trace's tree.

    A page holds up to 1,000 spans, so ``to_representation`` builds each one
    directly instead of field by field, which costs several times as much; a
    test holds its output equal to ``SpanSerializer``'s.
    """

    depth = serializers.IntegerField(help_text="0 for a root, its parent's depth + 1 otherwise.")

    class Meta(SpanSerializer.Meta):
        fields = [*SpanSerializer.Meta.fields, "depth"]
        read_only_fields = fields

    def to_representation(self, span: Span) -> dict:
        # Looked up once per page: the current time zone is a thread-local read.
        if not hasattr(self, "_zone"):
            self._zone = timezone.get_current_timezone()
        zone = self._zone

        def when(value):
            if value is None:
                return None
            text = value.astimezone(zone).isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text

        def number(value):
            return None if value is None else int(value)

        return {
            "spanId": span.span_id,
            "parentSpanId": span.parent_span_id,
            "name": span.name,
            "spanType": span.span_type,
            "status": span.status,
            "errorMessage": span.error_message,
            "startedAt": when(span.started_at),
            "endedAt": when(span.ended_at),
            "durationMs": None if span.duration_ms is None else round(float(span.duration_ms), 1),
            "input": span.input,
            "output": span.output,
            "attributes": span.attributes,
            "events": span.events,
            "resource": span.resource,
            "model": span.model,
            "inputTokens": number(span.input_tokens),
            "outputTokens": number(span.output_tokens),
            "depth": span.depth,
        }


class TraceDetailSerializer(TraceSerializer):
    """A trace with one page of its spans, in tree order, and their log records, in time order.

    The view sets ``page_spans``, ``page_logs`` and ``next_page`` on the trace.
    """

    rootSpanId = serializers.CharField(
        source="root_span_id", help_text="Empty until the root span has arrived."
    )
    hasRoot = serializers.BooleanField(source="has_root")
    errorMessage = serializers.CharField(
        source="error_message", help_text="The first failing span's message."
    )
    serviceName = serializers.CharField(source="service_name")
    spans = TreeSpanSerializer(
        source="page_spans",
        many=True,
        read_only=True,
        help_text="A page of the trace's spans, in tree order (parents first, siblings by start).",
    )
    logs = LogRecordSerializer(
        source="page_logs",
        many=True,
        read_only=True,
        help_text="The OTLP log records of the page's spans, in time order; the first page "
        "also has the trace's logs of no span or of a span not in the trace.",
    )
    next = serializers.URLField(
        source="next_page",
        allow_null=True,
        help_text="The next page of spans (same trace); null on the last page.",
    )

    class Meta(TraceSerializer.Meta):
        fields = [
            *TraceSerializer.Meta.fields,
            "rootSpanId",
            "hasRoot",
            "errorMessage",
            "serviceName",
            "spans",
            "logs",
            "next",
        ]
        read_only_fields = fields


class TraceErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
