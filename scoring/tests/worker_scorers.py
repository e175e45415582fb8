"""Scorers for the worker tests: their behaviour depends on the trace's question."""

import os
import time

from scoring.scorers import Scorer, ScorerError, ScoreResult, register_scorer


@register_scorer
class Picky(Scorer):
    """Scores 1; raises for a question with "boom"; hangs for one with "hang"."""

    id = "picky"
    name = "Picky"
    description = "Test scorer that fails or hangs on request."

    def score(self, data):
        if "boom" in data.question:
            raise ScorerError("The question asked for a boom.")
        if "crash" in data.question:
            raise RuntimeError("unexpected crash")
        if "hang" in data.question:
            time.sleep(30)
        return ScoreResult(1.0, "Picky is pleased.")


@register_scorer
class Slow(Scorer):
    """Takes TEST_SCORER_SLEEP seconds (default 0.4) per trace."""

    id = "slow"
    name = "Slow"
    description = "Test scorer that takes its time."

    def score(self, data):
        time.sleep(float(os.environ.get("TEST_SCORER_SLEEP", "0.4")))
        return ScoreResult(0.5, "Slow but sure.")
