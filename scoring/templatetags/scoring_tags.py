"""Template helpers of scores: judge details (tokens, cost), scores per trace and span, rules.

``{% load scoring_tags %}``: the trace pages belong to ``observability``, which
must not import ``scoring``; their templates load these tags instead, so the
list's score badges and scorer options, the detail's scores and what each rule
did with the trace come from here. Everything they return is escaped.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Count, Q

from observability.choices import SpanStatus, SpanType
from observability.models import Span
from scoring import rules
from scoring.choices import RuleOutcomeKind, ScoreStatus
from scoring.costs import format_usd
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
    return format_usd(value)


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
    """The trace's scores, newest first, whether any is still being worked on, and on each
    ``late_spans``: how many spans arrived after it was scored (one query, two when a span
    arrived after some score was scored)."""
    scores = _with_direction(list(trace.scores.newest_first()))
    _note_late_spans(trace, scores)
    return {"scores": scores, "pending": any(s.status == "pending" for s in scores)}


def _read_at(score: Score):
    # When the scorer read the trace: as rules.late_spans() takes it.
    return score.started_at or score.finished_at or score.created_at


def _note_late_spans(trace, scores: list[Score]) -> None:
    """``rules.late_spans(score)`` for every score of the page at once.

    late_spans() costs a query per score; the trace page has a fixed query
    budget, so the counts come from one aggregate, and only when the trace got
    spans (``updated_at``) after some finished score read it.
    """
    for score in scores:
        score.late_spans = 0
    maybe = [
        s
        for s in scores
        if s.status != ScoreStatus.PENDING and trace.updated_at and trace.updated_at > _read_at(s)
    ]
    if not maybe:
        return
    counts = Span.objects.filter(trace_id=trace.trace_id).aggregate(
        **{f"s{s.pk}": Count("pk", filter=Q(received_at__gt=_read_at(s))) for s in maybe}
    )
    for score in maybe:
        score.late_spans = counts[f"s{score.pk}"]


@register.simple_tag
def trace_rules(trace) -> dict[str, Any]:
    """What each active rule (and each rule that considered it) did with this trace.

    ``rows`` as ``rules.rule_outcomes_for_trace``; ``no_live_rule`` when the
    trace matched no live rule.
    """
    rows = rules.rule_outcomes_for_trace(trace.trace_id)
    return {"rows": rows, "no_live_rule": rules.matched_no_live_rule(rows)}


@register.filter
def filter_summary(rule_filter: Any) -> list[str]:
    """A rule filter in words, one part each ("name contains 'support'", "type Agent run")."""
    if not isinstance(rule_filter, dict):
        return []
    types = dict(SpanType.choices)
    statuses = dict(SpanStatus.choices)
    parts = []
    if rule_filter.get("name"):
        parts.append(f"name contains “{rule_filter['name']}”")
    if rule_filter.get("type"):
        parts.append(f"type {types.get(rule_filter['type'], rule_filter['type'])}")
    if rule_filter.get("status"):
        parts.append(f"status {statuses.get(rule_filter['status'], rule_filter['status'])}")
    if rule_filter.get("service"):
        parts.append(f"service “{rule_filter['service']}”")
    metadata = rule_filter.get("metadata")
    if isinstance(metadata, dict):
        parts.extend(f"metadata {key} = “{value}”" for key, value in metadata.items())
    if rule_filter.get("minDurationMs") is not None:
        parts.append(f"at least {_number(rule_filter['minDurationMs'])} ms")
    if rule_filter.get("maxDurationMs") is not None:
        parts.append(f"at most {_number(rule_filter['maxDurationMs'])} ms")
    return parts


def _number(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def target_label(target: str) -> str:
    """A rule's target in words: the whole trace, or every span of a type."""
    if not target or target == "trace":
        return "whole trace"
    return f"every {dict(SpanType.choices).get(target, target)}"


@register.filter
def percent(rate: Any) -> str:
    """A sample rate (0..1) as a percentage: 0.1 → "10 %"."""
    try:
        return f"{float(rate) * 100:g} %"
    except (TypeError, ValueError):
        return "—"


@register.filter
def scorer_name(names: Any, scorer_id: str) -> str:
    """A scorer's name from an id → name dict; the id itself for a scorer no longer registered."""
    return names.get(scorer_id, scorer_id) if isinstance(names, dict) else scorer_id


@register.filter
def outcome_label(outcome: str) -> str:
    return dict(RuleOutcomeKind.choices).get(outcome, outcome)
