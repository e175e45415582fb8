"""Test scorers for tests that run a real worker; listed via TRACESCORE_EXTRA_SCORERS."""

from __future__ import annotations

import os
import time

from scoring.scorers import ScorerError
from scoring.scorers.base import Scorer, ScoreResult, ScoringInput
from scoring.scorers.registry import register_scorer


@register_scorer
class AnswerLength(Scorer):
    """Fast: 1.0 when the answer has any text."""

    id = "test-answer-length"
    name = "Test answer length"
    description = "1.0 when the scored span has output text."

    def score(self, data: ScoringInput) -> ScoreResult:
        return ScoreResult(score=1.0 if data.output_text else 0.0, reason="Checked the answer.")


# Trace ids test-slow was called for, in this process (tests that run tasks in-process).
slow_calls: list[str] = []


@register_scorer
class SlowAnswer(Scorer):
    """Sleeps TEST_SCORER_SLEEP seconds (default 0.5) before scoring; notes each call."""

    id = "test-slow"
    name = "Test slow scorer"
    description = "Takes its time."

    def score(self, data: ScoringInput) -> ScoreResult:
        slow_calls.append(data.trace_id)
        time.sleep(float(os.environ.get("TEST_SCORER_SLEEP", "0.5")))
        return ScoreResult(score=0.5, reason="Took a while.")


@register_scorer
class PickyScorer(Scorer):
    """Raises ScorerError for answers mentioning 'refund', crashes on 'crash'."""

    id = "test-picky"
    name = "Test picky scorer"
    description = "Fails on some answers."

    def score(self, data: ScoringInput) -> ScoreResult:
        if "refund" in data.output_text:
            raise ScorerError("Refund answers cannot be scored.")
        if "crash" in data.output_text:
            raise RuntimeError("boom")
        if "hang" in data.output_text:
            time.sleep(3600)
        return ScoreResult(score=1.0, reason="Fine.")


@register_scorer
class Offline(Scorer):
    id = "test-offline"
    name = "Test offline judge"
    kind = "llm"

    def availability(self) -> tuple[bool, str]:
        return False, "No judge endpoint is configured."

    def score(self, data: ScoringInput) -> ScoreResult:  # pragma: no cover
        raise AssertionError("unavailable scorers are never run")


@register_scorer
class BrokenUntilFixed(Scorer):
    """Fails while the file named by TEST_SCORER_BROKEN_FLAG exists (a scorer being fixed)."""

    id = "test-broken-until-fixed"
    name = "Test scorer that is broken until fixed"
    description = "Fails while its flag file exists."

    def score(self, data: ScoringInput) -> ScoreResult:
        flag = os.environ.get("TEST_SCORER_BROKEN_FLAG", "")
        if flag and os.path.exists(flag):
            raise ScorerError("The scorer is broken.")
        return ScoreResult(score=0.75, reason="Fixed now.")
