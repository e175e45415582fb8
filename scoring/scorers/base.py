"""The scorer contract.

A scorer turns one trace (or one span of it) into a score with a reason::

    class Politeness(Scorer):
        id = "politeness"
        name = "Politeness"
        description = "Does the answer say please or thank you?"

        def score(self, data: ScoringInput) -> ScoreResult:
            polite = any(w in data.output_text.lower() for w in ("please", "thank"))
            return ScoreResult(
                score=1.0 if polite else 0.0,
                reason="The answer is polite." if polite else "No please or thank you.",
            )

``score`` must be a pure function of its ``ScoringInput``: no database access,
so it can be tested without one and run in any worker. Raise ``ScorerError``
with a message a user can act on when the trace cannot be scored (no output to
judge, judge endpoint down…); any other exception is recorded as a failure too,
but with a less helpful message. A scorer that waits on the network stops
waiting by ``time_left()``.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

# When the scorer running in this thread must have finished (time.monotonic()),
# set by the worker for each run; None when no limit applies (a direct call).
DEADLINE: ContextVar[float | None] = ContextVar("scorer_deadline", default=None)


def time_left() -> float | None:
    """Seconds left before this scorer run's time limit; None when there is none.

    A scorer that waits on the network (a judge) must give up by then: past its
    limit the run is failed and nothing it does afterwards is kept or wanted.
    """
    deadline = DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


class ScorerError(Exception):
    """This trace could not be scored; the message says why, for a person."""


class ScorerSkipped(ScorerError):
    """The scorer does not apply to what it was given (nothing to judge, a span type
    it is not meant for): the Score ends ``skipped`` with this message as its
    reason, which never counts as a failure."""


# Span types (observability.choices.SpanType) grouped as scorers declare them.
ANSWER_SPANS = frozenset({"agent_run", "workflow_run", "llm_generation"})
RUN_SPANS = frozenset({"agent_run", "workflow_run", "workflow_step"})


class ScorerFailure(ScorerError):
    """A ScorerError that keeps what the run found before it failed.

    ``details`` (a judge's steps so far, the raw answer that could not be
    parsed…) is stored on the failed Score, so a person can see why.
    """

    def __init__(self, message: str, *, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.details = details or {}


class ScorerThrottled(ScorerFailure):
    """The scorer's endpoint kept it waiting (rate limits, 429 answers) past its time
    limit. Nothing is wrong with the trace: the worker queues the Score again
    rather than failing it, while it has attempts left."""


@dataclass(frozen=True)
class ToolCall:
    """One tool call of the trace, in the order the calls started."""

    span_id: str
    name: str
    arguments: Any = None
    result: Any = None
    error: str = ""
    started_at: datetime | None = None
    duration_ms: float | None = None


@dataclass(frozen=True)
class LLMStep:
    """One LLM generation of the trace, in the order the steps started."""

    span_id: str
    model: str = ""
    input: Any = None
    output: Any = None
    input_text: str = ""
    output_text: str = ""
    system_prompt: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str = ""
    started_at: datetime | None = None
    duration_ms: float | None = None


@dataclass(frozen=True)
class SpanSummary:
    """A plain copy of one span of the trace (no ORM object leaks into scorers)."""

    span_id: str
    parent_span_id: str | None
    name: str
    span_type: str
    status: str
    error_message: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: float | None = None
    input: Any = None
    output: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(frozen=True)
class ScoringInput:
    """Everything a scorer may look at for one trace.

    ``input``/``output`` are the scored span's raw values as stored;
    ``input_text``/``output_text`` are the same as plain text (an agent's final
    answer rather than a JSON blob, where the conventions say where it is).
    """

    trace_id: str
    span_id: str
    scope: str = "trace"  # "trace": the root stands for the whole trace; "span": one span
    span_name: str = ""
    span_type: str = ""
    input: Any = None
    output: Any = None
    input_text: str = ""
    output_text: str = ""
    question: str = ""
    system_prompt: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    llm_steps: tuple[LLMStep, ...] = ()
    spans: tuple[SpanSummary, ...] = ()
    subtree: tuple[SpanSummary, ...] = ()  # the scored span and its descendants
    metadata: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    duration_ms: float | None = None
    notes: tuple[str, ...] = ()  # e.g. "the trace has no root span yet; scored span X"

    @property
    def error_spans(self) -> tuple[SpanSummary, ...]:
        """Failed spans of what is scored: the whole trace, or the scored span's subtree."""
        scoped = self.subtree if self.scope == "span" and self.subtree else self.spans
        return tuple(span for span in scoped if span.status == "error")


@dataclass(frozen=True)
class ScoreResult:
    """A score within the scorer's range, a reason a person understands, and details."""

    score: float
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


class Scorer:
    """Base class of every scorer. Subclasses set the class attributes and ``score``."""

    id: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    kind: ClassVar[Literal["code", "llm"]] = "code"
    min_score: ClassVar[float] = 0.0
    max_score: ClassVar[float] = 1.0
    higher_is_better: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    # The span types this scorer makes sense for when spans are scored one by
    # one; None means any span. Whole-trace scoring (the root) always applies.
    span_types: ClassVar[frozenset[str] | None] = None

    def applies_to(self, span_type: str) -> bool:
        return self.span_types is None or span_type in self.span_types

    def skip_reason(self, span_type: str) -> str:
        """Why this scorer skips a span of this type ("" when it applies)."""
        if self.applies_to(span_type):
            return ""
        kinds = ", ".join(sorted(t.replace("_", " ") for t in self.span_types or ()))
        return (
            f"{self.name} applies to {kinds} spans, not to a "
            f"{(span_type or 'generic').replace('_', ' ')} span."
        )

    def availability(self) -> tuple[bool, str]:
        """(available, reason it is not). Judges without an endpoint are unavailable."""
        return True, ""

    @property
    def available(self) -> bool:
        return self.availability()[0]

    @property
    def unavailable_reason(self) -> str:
        return self.availability()[1]

    def score(self, data: ScoringInput) -> ScoreResult:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r}>"
