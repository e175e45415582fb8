"""Traces, spans and logs received over OpenTelemetry, and the keys that may send them."""

from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from observability.choices import SpanStatus, SpanType


class TraceQuerySet(models.QuerySet):
    def newest_first(self):
        return self.order_by("-started_at", "-trace_id")


class Trace(models.Model):
    """One row per trace id, kept up to date at ingest.

    The list pages read only this table, so they never aggregate spans per
    request. Spans arrive in any order and in several requests (the root span
    usually ends, and so arrives, last); ``has_root`` says whether it is here
    yet, and the name/type come from the root once it is.
    """

    trace_id = models.CharField(max_length=32, primary_key=True)
    root_span_id = models.CharField(max_length=16, blank=True, default="")
    has_root = models.BooleanField(default=False)
    name = models.CharField(max_length=512, blank=True, default="")
    span_type = models.CharField(
        max_length=32, choices=SpanType.choices, default=SpanType.GENERIC, db_index=True
    )
    status = models.CharField(
        max_length=8, choices=SpanStatus.choices, default=SpanStatus.UNSET, db_index=True
    )
    has_error = models.BooleanField(default=False)
    error_message = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    span_count = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    service_name = models.CharField(max_length=256, blank=True, default="")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TraceQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-trace_id"]
        indexes = [
            models.Index(fields=["-started_at", "-trace_id"], name="trace_started_idx"),
            models.Index(fields=["span_type", "-started_at"], name="trace_type_started_idx"),
            models.Index(fields=["status", "-started_at"], name="trace_status_started_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name or '(no root yet)'} [{self.trace_id}]"

    def get_absolute_url(self) -> str:
        return reverse("observability:trace-detail", args=[self.trace_id])

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class SpanQuerySet(models.QuerySet):
    def in_order(self):
        return self.order_by("started_at", "span_id")


class Span(models.Model):
    """One OpenTelemetry span, mapped onto the fields tracescore shows and scores.

    Unique on (trace, span_id): exporters retry, and a retried batch updates
    the span instead of duplicating it. ``attributes`` keeps every attribute as
    sent, so nothing the mapping does not know about is lost.
    """

    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="spans")
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, null=True, blank=True)
    name = models.CharField(max_length=512, blank=True, default="")
    span_type = models.CharField(max_length=32, choices=SpanType.choices, default=SpanType.GENERIC)
    status = models.CharField(max_length=8, choices=SpanStatus.choices, default=SpanStatus.UNSET)
    error_message = models.TextField(blank=True, default="")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    resource = models.JSONField(default=dict, blank=True)
    events = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=256, blank=True, default="")
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now=True)

    objects = SpanQuerySet.as_manager()

    class Meta:
        ordering = ["started_at", "span_id"]
        constraints = [
            models.UniqueConstraint(fields=["trace", "span_id"], name="span_unique_per_trace"),
        ]
        indexes = [models.Index(fields=["-started_at"], name="span_started_idx")]

    def __str__(self) -> str:
        return f"{self.name} [{self.span_id}]"

    @property
    def is_root(self) -> bool:
        return not self.parent_span_id


class IngestKey(models.Model):
    """A secret that lets an OTLP exporter send spans (``Authorization: Bearer <key>``).

    Only a hash of the secret is stored; the key itself is shown once, when it
    is created. ``prefix`` is the first characters of the key, so a person can
    tell keys apart in the admin.
    """

    name = models.CharField(max_length=128)
    prefix = models.CharField(max_length=16, db_index=True)
    hashed_secret = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class LogRecordQuerySet(models.QuerySet):
    def in_order(self):
        return self.order_by("time", "id")

    def for_spans(self, trace_id: str, span_ids: list[str], *, with_strays: bool = False):
        """The logs of some spans of a trace (a span's panel, a page of spans), in time order.

        ``with_strays`` adds the trace's logs that name no span, or a span that
        is not (yet) in the trace, so every log of a trace shows somewhere.
        """
        logs = self.filter(trace_id=trace_id)
        if not with_strays:
            return logs.filter(span_id__in=span_ids).in_order()
        known = Span.objects.filter(trace_id=OuterRef("trace_id"), span_id=OuterRef("span_id"))
        return (
            logs.annotate(span_known=Exists(known))
            .filter(Q(span_id__in=span_ids) | Q(span_known=False))
            .in_order()
        )


class LogRecord(models.Model):
    """One OTLP log record that carries a trace id, shown in its span's panel.

    Log exporters batch separately from span exporters, so a trace's logs often
    arrive before its spans: the link to the trace has no database constraint,
    and the logs show once the trace's spans are in (they are deleted with
    their trace). ``span_id`` is empty for a log tied to the trace but no span.

    ``record_hash`` is a digest of everything the record says, unique, so an
    exporter's retried export stores nothing twice (two records identical to
    the nanosecond in every field are kept once).
    """

    trace = models.ForeignKey(
        Trace,
        on_delete=models.CASCADE,
        related_name="logs",
        db_constraint=False,
        db_index=False,  # the (trace, span_id, time) index serves lookups by trace
    )
    span_id = models.CharField(max_length=16, blank=True, default="")
    time = models.DateTimeField(help_text="When it happened, else when it was observed.")
    observed_at = models.DateTimeField(null=True, blank=True)
    severity_number = models.PositiveSmallIntegerField(default=0)
    severity_text = models.CharField(max_length=64, blank=True, default="")
    event_name = models.CharField(max_length=256, blank=True, default="")
    body = models.JSONField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    resource = models.JSONField(default=dict, blank=True)
    scope_name = models.CharField(max_length=256, blank=True, default="")
    record_hash = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField(auto_now_add=True)

    objects = LogRecordQuerySet.as_manager()

    class Meta:
        ordering = ["time", "id"]
        indexes = [
            models.Index(fields=["trace", "span_id", "time"], name="log_trace_span_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.severity_label} {self.time:%H:%M:%S} [{self.trace_id}/{self.span_id}]"

    @property
    def severity_label(self) -> str:
        """The sender's severity text, else the name of the OTLP severity number's range."""
        if self.severity_text:
            return self.severity_text
        return severity_name(self.severity_number)

    @property
    def severity_level(self) -> str:
        """trace / debug / info / warn / error / fatal, or "" when unset (for styling)."""
        return severity_name(self.severity_number).lower()


# OTLP severity numbers come in ranges of four: 1-4 TRACE … 21-24 FATAL.
SEVERITY_NAMES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def severity_name(number: int) -> str:
    if not 1 <= number <= 24:
        return ""
    return SEVERITY_NAMES[(number - 1) // 4]
