"""FilterSets shared by the scorer results page and the results API."""

import django_filters

from scoring.choices import ScoreStatus
from scoring.models import Score


class ScoreFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ScoreStatus.choices, empty_label="Any status")
    min_score = django_filters.NumberFilter(field_name="score", lookup_expr="gte", label="Min")
    max_score = django_filters.NumberFilter(field_name="score", lookup_expr="lte", label="Max")
    created_after = django_filters.DateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="After"
    )
    created_before = django_filters.DateTimeFilter(
        field_name="created_at", lookup_expr="lt", label="Before"
    )

    class Meta:
        model = Score
        fields = ["status", "min_score", "max_score", "created_after", "created_before"]
