"""django-q2 entry points: look things up by id and call a service.

``score_trace`` claims one Score (or does nothing when another run holds it or
it is finished), runs its scorer on its trace and records the outcome.

The scorer runs in a thread with a time limit (``TRACESCORE_SCORER_TIMEOUT``,
below the django-q2 task timeout), so a hanging scorer becomes a failed Score
with a message instead of a killed worker. A Python thread cannot be stopped
from outside, so the limit is also handed to the scorer as a deadline
(``scoring.scorers.base.time_left``): the judges size every HTTP call and
retry to it and make no call past it. A code scorer stuck in a loop keeps its
thread until the worker process is recycled, but nothing it returns is kept:
only the claim's holder records, and the Score is already failed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings

from scoring import services
from scoring.choices import ScopeType
from scoring.inputs import build_scoring_input
from scoring.models import Score
from scoring.scorers import ScorerError, ScorerSkipped, registry
from scoring.scorers.base import DEADLINE, Scorer, ScoreResult, ScoringInput

log = logging.getLogger(__name__)


class ScorerTimeout(Exception):
    pass


def run_with_timeout(scorer: Scorer, data: ScoringInput, timeout: float) -> ScoreResult:
    """Run ``scorer.score(data)`` in a daemon thread; raise ScorerTimeout past ``timeout``."""
    outcome: dict[str, Any] = {}
    deadline = time.monotonic() + timeout

    def target():
        DEADLINE.set(deadline)  # a new thread starts with an empty context
        try:
            outcome["result"] = scorer.score(data)
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name=f"scorer-{scorer.id}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ScorerTimeout(f"The scorer did not finish within {timeout:g} s.")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _check(result: Any, scorer: Scorer) -> ScoreResult:
    if not isinstance(result, ScoreResult):
        raise ScorerError(f"The scorer returned {type(result).__name__}, not a ScoreResult.")
    value = float(result.score)
    if not scorer.min_score <= value <= scorer.max_score:
        raise ScorerError(
            f"The scorer returned {value}, outside its range "
            f"{scorer.min_score}..{scorer.max_score}."
        )
    return result


def score_trace(score_id: int) -> str:
    """Score one trace for one pending Score and record the outcome."""
    claim = services.claim_score(score_id=score_id)
    if claim is None:
        return "skipped: finished, gone or held by another run"
    score = (
        Score.objects.filter(pk=score_id)
        .select_related("batch")
        .only("trace_id", "scorer_id", "span_id", "batch__scope_type")
        .first()
    )
    if score is None:
        return "skipped: gone"
    started = time.perf_counter()
    outcome = services.Outcome(span_id=score.span_id)
    span_scope = score.batch is not None and score.batch.scope_type == ScopeType.SPAN
    try:
        scorer = registry.get(score.scorer_id)
        if span_scope:
            data = build_scoring_input(score.trace_id, span_id=score.span_id, scope=ScopeType.SPAN)
        else:  # the root, chosen now: it may have arrived after the batch started
            data = build_scoring_input(score.trace_id)
        outcome.span_id, outcome.input, outcome.output = data.span_id, data.input, data.output
        outcome.span_name, outcome.span_type = data.span_name, data.span_type
        result = _check(run_with_timeout(scorer, data, settings.TRACESCORE_SCORER_TIMEOUT), scorer)
        outcome.score, outcome.reason = float(result.score), result.reason
        outcome.details = dict(result.details or {})
        if data.notes:
            outcome.details["notes"] = list(data.notes)
    except ScorerSkipped as skip:
        outcome.skipped, outcome.reason = True, str(skip)
    except (ScorerError, ScorerTimeout, registry.UnknownScorer) as error:
        outcome.error = str(error)
        outcome.details = dict(getattr(error, "details", None) or {})
    except Exception as error:
        log.exception("Scorer %s failed on score %s", score.scorer_id, score_id)
        outcome.error = f"The scorer crashed: {type(error).__name__}: {error}"
    outcome.duration_ms = (time.perf_counter() - started) * 1000
    if not services.record_score(score_id=score_id, claim=claim, outcome=outcome):
        return "dropped: the lease ran out and the score was handed on"
    if outcome.error:
        return "failed"
    return "skipped" if outcome.skipped else "succeeded"


def enqueue_batch(batch_id: str) -> int:
    """Fan out a large batch: one scoring task per pending Score."""
    return services.enqueue_scores(batch_id=batch_id)


def requeue_stale_scores() -> dict[str, int]:
    """Scheduled every minute (migration scoring 0003): recover lost work, wake the live
    sweeper when finished traces wait for it, and resume stalled fan-outs."""
    from scoring import rules

    result = services.requeue_stale_scores()
    result["sweeper_woken"] = int(rules.wake_sweeper_if_due())
    result["fanouts_resumed"] = rules.resume_stalled_fanouts()
    return result


def run_live_sweeper() -> str:
    """Score finished traces with the live rules (one sweeper at a time; see scoring.rules)."""
    from scoring import rules

    return rules.run_live_sweeper()


def fan_out_batch(batch_id: str) -> str:
    """Add a filter-wide batch's or backfill's Scores, chunk by chunk (see scoring.rules)."""
    from scoring import rules

    return rules.fan_out_batch(batch_id)
