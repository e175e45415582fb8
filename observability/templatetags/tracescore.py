"""Template helpers for showing traces and scores. Everything they return is escaped."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.http import QueryDict

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """Span content, pretty-printed on the server (autoescaping still applies)."""
    if value is None:
        return ""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in "{[":
            try:
                value = json.loads(stripped)
            except ValueError:
                return value
        else:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.filter
def duration(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 60_000:.1f} min"


@register.filter
def score_value(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


@register.filter
def score_tone(score) -> str:
    """good / fair / poor for a succeeded score, by its scorer's direction; else its status."""
    if score.status != "succeeded" or score.score is None:
        return score.status
    higher_is_better = getattr(score, "higher_is_better", True)
    value = score.score if higher_is_better else 1 - score.score
    return "good" if value >= 0.75 else "fair" if value >= 0.4 else "poor"


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (None or "" removes one)."""
    query: QueryDict = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            query.pop(key, None)
        else:
            query[key] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"
