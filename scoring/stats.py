"""Reads that summarise scores: per-scorer statistics and score distributions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Avg, Count, Max, Q, QuerySet

from scoring.choices import ScoreStatus
from scoring.models import Score
from scoring.scorers import registry
from scoring.scorers.base import Scorer

EMPTY = {"count": 0, "failed": 0, "skipped": 0, "pending": 0, "mean": None, "last_run": None}


def scorer_stats(scorer_id: str | None = None) -> dict[str, dict[str, Any]]:
    """Per scorer, in one query: results (finished: succeeded, failed or skipped),
    failures, skips, pending, mean score and last run."""
    scores = Score.objects.all()
    if scorer_id:
        scores = scores.filter(scorer_id=scorer_id)
    rows = (
        scores.order_by()
        .values("scorer_id")
        .annotate(
            count=Count("id", filter=~Q(status=ScoreStatus.PENDING)),
            failed=Count("id", filter=Q(status=ScoreStatus.FAILED)),
            skipped=Count("id", filter=Q(status=ScoreStatus.SKIPPED)),
            pending=Count("id", filter=Q(status=ScoreStatus.PENDING)),
            mean=Avg("score", filter=Q(status=ScoreStatus.SUCCEEDED)),
            last_run=Max("created_at"),
        )
    )
    return {row.pop("scorer_id"): row for row in rows}


@dataclass
class ScorerRow:
    """A registered scorer with its statistics, as lists and the API show it."""

    scorer: Scorer
    stats: dict[str, Any] = field(default_factory=lambda: dict(EMPTY))
    results_url: str = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.scorer, name)


def scorer_rows() -> list[ScorerRow]:
    stats = scorer_stats()
    return [ScorerRow(s, stats.get(s.id, dict(EMPTY))) for s in registry.all()]


def histogram(
    scores: QuerySet, low: float = 0.0, high: float = 1.0, bins: int = 10
) -> list[dict[str, Any]]:
    """Counts of succeeded scores in ``bins`` equal bins over [low, high]."""
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in scores.filter(status=ScoreStatus.SUCCEEDED).values_list("score", flat=True):
        if value is None:
            continue
        index = min(bins - 1, max(0, int((value - low) / width)))
        counts[index] += 1
    return [
        {"low": low + i * width, "high": low + (i + 1) * width, "count": c}
        for i, c in enumerate(counts)
    ]
