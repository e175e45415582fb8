"""FilterSets shared by the scorer results page and the results API."""

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, QuerySet
from drf_spectacular.utils import extend_schema_field

from observability.choices import SpanType
from scoring.choices import ScoreStatus
from scoring.models import Score
from tracescore.timebounds import iso_schema, storable_datetime


class StorableDateTimeField(forms.DateTimeField):
    """A datetime in UTC, within the years the database takes (else a validation error)."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return storable_datetime(parsed)
        except (ValueError, OverflowError) as error:
            raise forms.ValidationError(str(error), code="out_of_range") from None


@extend_schema_field(
    iso_schema("date-time", description="An ISO 8601 datetime, in the years 1900 to 9000.")
)
class StorableDateTimeFilter(django_filters.DateTimeFilter):
    field_class = StorableDateTimeField


# django-filter caps NumberFilter at 1e50 (its Decimal field would overflow past it).
SCORE_LIMIT = 1e50


@extend_schema_field({"type": "number", "minimum": -SCORE_LIMIT, "maximum": SCORE_LIMIT})
class ScoreBoundFilter(django_filters.NumberFilter):
    """A bound on ``score``: any number from -1e50 to 1e50, as the schema says."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", -SCORE_LIMIT)
        super().__init__(*args, **kwargs)


def traces_scored_by(traces: QuerySet, scorer_id: str) -> QuerySet:
    """The trace list's ``scored_by`` filter: traces with at least one score from the scorer."""
    scores = Score.objects.filter(trace_id=OuterRef("trace_id"), scorer_id=scorer_id)
    return traces.filter(Exists(scores))


class ScoreFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ScoreStatus.choices, empty_label="Any status")
    min_score = ScoreBoundFilter(field_name="score", lookup_expr="gte", label="Min")
    max_score = ScoreBoundFilter(field_name="score", lookup_expr="lte", label="Max")
    spanType = django_filters.ChoiceFilter(  # noqa: N815 - the API's camelCase
        field_name="span_type", choices=SpanType.choices, empty_label="Any span", label="Span"
    )
    created_after = StorableDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="After"
    )
    created_before = StorableDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label="Before"
    )

    class Meta:
        model = Score
        fields = ["status", "spanType", "min_score", "max_score", "created_after", "created_before"]
