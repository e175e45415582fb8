"""Scores on the trace page, per span: ``{% load scoring_tags %}``.

The trace page belongs to ``observability``, which must not import ``scoring``;
its template loads these tags instead, so the scores come from here.
"""

from __future__ import annotations

from django import template

from scoring.models import Score
from scoring.scorers import registry

register = template.Library()


def _with_direction(scores: list[Score]) -> list[Score]:
    directions = {s.id: s.higher_is_better for s in registry.all()}
    for score in scores:
        score.higher_is_better = directions.get(score.scorer_id, True)
    return scores


@register.simple_tag
def span_badges(trace) -> dict[str, list[Score]]:
    """span id → the newest Score of each scorer on that span, in one query."""
    latest: dict[str, dict[str, Score]] = {}
    scores = (
        Score.objects.filter(trace_id=trace.trace_id)
        .only("span_id", "scorer_id", "scorer_name", "score", "status", "reason", "error")
        .order_by("span_id", "scorer_id", "-created_at", "-id")
    )
    for score in _with_direction(list(scores)):
        latest.setdefault(score.span_id, {}).setdefault(score.scorer_id, score)
    return {span_id: list(by_scorer.values()) for span_id, by_scorer in latest.items()}


@register.filter
def badges_of(by_span: dict, span_id: str) -> list[Score]:
    return by_span.get(span_id, []) if isinstance(by_span, dict) else []


@register.simple_tag
def span_scores(trace, span) -> list[Score]:
    """Every Score of one span, newest first (the span panel)."""
    if span is None:
        return []
    scores = Score.objects.filter(trace_id=trace.trace_id, span_id=span.span_id).newest_first()
    return _with_direction(list(scores))
