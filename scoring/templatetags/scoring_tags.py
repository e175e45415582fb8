"""Template helpers for judge details: tokens and cost. Everything they return is escaped."""

from __future__ import annotations

from typing import Any

from django import template

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
