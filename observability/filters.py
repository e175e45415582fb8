"""The trace FilterSet, shared by the HTML trace list and ``GET /api/traces``.

Query parameters (the UI and API clients rely on these names):

- ``name``: part of the trace name, any case
- ``type``: the root span's type (agent_run, workflow_run, …)
- ``status``: ok / error / unset
- ``started_after`` / ``started_before``: an ISO date (``2026-11-20``) or
  datetime (``2026-11-20T14:30:00Z``); a date alone covers that whole day, so
  ``started_after=D1&started_before=D2`` is the inclusive date range D1–D2
- ``service``: the service name (``service.name`` of the root's resource), exactly
- ``metadata``: ``key=value``; traces whose metadata (on the root span: a
  ``metadata`` object, ``metadata.<key>`` or ``mastra.metadata.<key>``
  attributes) has that key with that value (compared as text)
- ``min_duration_ms`` / ``max_duration_ms``: the trace's duration range, inclusive
- ``scored_by``: a scorer id; traces with at least one score from that scorer
"""

from __future__ import annotations

import datetime as dt
import re

import django_filters
from django import forms
from django.core.validators import RegexValidator
from django.db.models import Exists, OuterRef, Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field

from observability.choices import SpanStatus, SpanType
from observability.extensions import apply_trace_filter
from observability.models import Span, Trace
from tracescore.timebounds import iso_schema, storable_date, storable_datetime


class DateOrDateTimeField(forms.Field):
    """Accepts an ISO 8601 date or datetime; cleans to ``date`` or aware ``datetime``."""

    default_error_messages = {
        "invalid": "Enter an ISO 8601 date (2026-11-20) or date and time (2026-11-20T14:30:00Z).",
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, dt.date):
            return value
        text = str(value).strip()
        # An unencoded "+01:00" offset in a query string arrives as " 01:00".
        text = re.sub(r"(T[\d:.]+) (\d{2}:?\d{2})$", r"\1+\2", text)
        try:
            parsed = parse_datetime(text) if "T" in text or " " in text else parse_date(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        try:
            if isinstance(parsed, dt.datetime):
                if timezone.is_naive(parsed):
                    parsed = timezone.make_aware(parsed)
                return storable_datetime(parsed)
            return storable_date(parsed)
        except (ValueError, OverflowError) as error:
            raise forms.ValidationError(str(error), code="out_of_range") from None


# What ``scored_by`` takes; empty means any scorer.
SCORER_ID_PATTERN = r"^[\w.:-]*$"


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


@extend_schema_field(
    iso_schema(
        "date",
        "date-time",
        description=(
            "An ISO 8601 date (2026-11-20) or datetime (2026-11-20T14:30:00Z), in the years "
            "1900 to 9000. A date alone covers its whole day: started_after from its start, "
            "started_before to its end."
        ),
    )
)
class StartedFilter(django_filters.Filter):
    """``started_at`` bound. ``before=True`` is exclusive for a datetime, whole-day for a date."""

    field_class = DateOrDateTimeField

    def __init__(self, *args, before: bool = False, **kwargs):
        self.before = before
        kwargs.setdefault("field_name", "started_at")
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value) -> QuerySet:
        if value is None:
            return qs
        if isinstance(value, dt.datetime):
            bound = value
        else:
            bound = _start_of(value + dt.timedelta(days=1) if self.before else value)
        lookup = "lt" if self.before else "gte"
        return qs.filter(**{f"{self.field_name}__{lookup}": bound})


@extend_schema_field({"type": "string", "maxLength": 512, "pattern": "^[^\\u0000]*$"})
class NameFilter(django_filters.CharFilter):
    """Text to look for; Django's form field refuses NUL characters, which no name has."""


@extend_schema_field({"type": "string", "maxLength": 100, "pattern": SCORER_ID_PATTERN})
class ScorerIdFilter(django_filters.CharFilter):
    """A scorer id, as written (not stripped: the schema states the exact pattern)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("strip", False)
        super().__init__(*args, **kwargs)


# Where a trace's metadata key may sit on its root span's attributes.
METADATA_PREFIXES = ("metadata.", "tracescore.metadata.", "mastra.metadata.")
# Empty means no metadata filter, as for every other filter.
METADATA_PATTERN = r"^([^=\x00]{1,200}=[^\x00]{0,1000})?$"


def parse_metadata_pair(value: str) -> tuple[str, str]:
    """``"key=value"`` as (key, value); the key is stripped, the value kept as written."""
    key, _, wanted = value.partition("=")
    return key.strip(), wanted


@extend_schema_field({"type": "string", "maxLength": 1201, "pattern": METADATA_PATTERN})
class MetadataFilter(django_filters.CharFilter):
    """``key=value`` on the trace's metadata, read from its root span."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("strip", False)
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value: str) -> QuerySet:
        if not value:
            return qs
        return filter_metadata(qs, *parse_metadata_pair(value))


def filter_metadata(traces: QuerySet, key: str, wanted: str) -> QuerySet:
    """Traces whose root span carries metadata ``key`` with the text value ``wanted``."""
    roots = Span.objects.filter(trace=OuterRef("pk"), parent_span_id__isnull=True)
    match = Q()
    for index, attribute in enumerate((*(p + key for p in METADATA_PREFIXES), None)):
        alias = f"_meta_{index}"
        if attribute is None:  # a "metadata" object attribute holding the key
            text = KeyTextTransform(key, KeyTransform("metadata", "attributes"))
        else:
            text = KeyTextTransform(attribute, "attributes")
        roots = roots.alias(**{alias: Cast(text, TextField())})
        match |= Q(**{alias: wanted})
    return traces.filter(Exists(roots.filter(match)))


MAX_DURATION_MS = 10**12


@extend_schema_field({"type": "number", "minimum": 0, "maximum": MAX_DURATION_MS})
class DurationFilter(django_filters.NumberFilter):
    """A bound on the trace's duration in milliseconds, inclusive."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("field_name", "duration_ms")
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", MAX_DURATION_MS)
        super().__init__(*args, **kwargs)


class TraceFilter(django_filters.FilterSet):
    """Filters of the trace list; all read the Trace table only (scored_by adds Score)."""

    name = NameFilter(
        lookup_expr="icontains",
        max_length=512,
        label="Name",
        help_text="Part of the trace name, any case.",
    )
    type = django_filters.ChoiceFilter(
        field_name="span_type",
        choices=SpanType.choices,
        empty_label="Any type",
        label="Type",
        help_text="Type of the root span.",
    )
    status = django_filters.ChoiceFilter(
        choices=SpanStatus.choices,
        empty_label="Any status",
        label="Status",
    )
    started_after = StartedFilter(
        label="Started after",
        help_text="ISO date or datetime; a date means from the start of that day.",
    )
    started_before = StartedFilter(
        before=True,
        label="Started before",
        help_text="ISO date or datetime; a date includes that whole day.",
    )
    service = django_filters.CharFilter(
        field_name="service_name",
        max_length=256,
        label="Service",
        help_text="The service name (service.name), exactly.",
    )
    metadata = MetadataFilter(
        max_length=1201,
        validators=[RegexValidator(METADATA_PATTERN, "Enter metadata as key=value.")],
        label="Metadata",
        help_text="key=value: traces whose metadata has that key with that value.",
    )
    min_duration_ms = DurationFilter(
        lookup_expr="gte",
        label="Min duration (ms)",
        help_text="Traces that lasted at least this many milliseconds.",
    )
    max_duration_ms = DurationFilter(
        lookup_expr="lte",
        label="Max duration (ms)",
        help_text="Traces that lasted at most this many milliseconds.",
    )
    scored_by = ScorerIdFilter(
        method="filter_scored_by",
        max_length=100,
        validators=[
            RegexValidator(SCORER_ID_PATTERN, "Enter a scorer id, such as 'keyword-coverage'.")
        ],
        label="Scored by",
        help_text="A scorer id: traces with at least one score from that scorer.",
    )

    class Meta:
        model = Trace
        fields = [
            "name",
            "type",
            "status",
            "service",
            "metadata",
            "min_duration_ms",
            "max_duration_ms",
            "started_after",
            "started_before",
            "scored_by",
        ]

    def filter_scored_by(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # The scoring app knows what a score is; it registers this filter.
        return apply_trace_filter("scored_by", queryset, value)
