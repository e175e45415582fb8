"""Template helpers of scores: judge details (tokens, cost), scores per trace and span, rules.

``{% load scoring_tags %}``: the trace pages belong to ``observability``, which
must not import ``scoring``; their templates load these tags instead, so the
list's score badges and scorer options, the detail's scores and what each rule
did with the trace come from here. Everything they return is escaped.
"""

from __future__ import annotations

from typing import Any

from django import template

from scoring.models import Score
from scoring.scorers import registry

register = template.Library()


@register.filter
def usd(value: Any) -> str:
    """A cost in US dollars; small costs keep their significant digits."""
    if value is None or value == "":
        return "cost unknown"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "cost unknown"
    if value == 0:
        return "$0"
    if value < 0.01:
        return f"${value:.6f}".rstrip("0")
    return f"${value:,.2f}"


@register.filter
def tokens(usage: Any) -> str:
    """``{"prompt_tokens", "completion_tokens"}`` as "1,200 in + 80 out tokens"."""
    if not isinstance(usage, dict):
        return "tokens unknown"
    sent, received = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if sent is None and received is None:
        return "tokens unknown"

    def count(value: Any) -> str:
        return "?" if value is None else f"{int(value):,}"

    return f"{count(sent)} in + {count(received)} out tokens"


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


@register.simple_tag
def scorer_options() -> list:
    """Every registered scorer (the trace list's "Scored by" options); no query."""
    return registry.all()


@register.simple_tag
def latest_score_badges(traces) -> dict[str, list[Score]]:
    """trace id → the newest Score of each scorer on that trace (the list's badges), one query."""
    trace_ids = [trace.trace_id for trace in traces]
    if not trace_ids:
        return {}
    latest: dict[str, dict[str, Score]] = {}
    scores = (
        Score.objects.filter(trace_id__in=trace_ids)
        .only("trace_id", "scorer_id", "scorer_name", "score", "status", "reason", "error")
        .order_by("trace_id", "scorer_id", "-created_at", "-id")
    )
    for score in scores:
        latest.setdefault(score.trace_id, {}).setdefault(score.scorer_id, score)
    return {trace_id: list(by_scorer.values()) for trace_id, by_scorer in latest.items()}


@register.simple_tag
def trace_scores(trace) -> dict[str, Any]:
    """The trace's scores, newest first, and whether any is still being worked on (one query)."""
    scores = _with_direction(list(trace.scores.newest_first()))
    return {"scores": scores, "pending": any(s.status == "pending" for s in scores)}
