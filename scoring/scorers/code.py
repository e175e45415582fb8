"""Built-in code scorers: no network, deterministic, every score in [0, 1].

Each reads only its ``ScoringInput``. Scorers that judge the answer raise
``ScorerError`` when the scored span has no output, since a 0 would read as
"a bad answer" when there is no answer at all.
"""

from __future__ import annotations

import json
import re
from functools import cache

from django.conf import settings
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from scoring.scorers.base import Scorer, ScorerError, ScoreResult, ScoringInput
from scoring.scorers.registry import register_scorer

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    please hi hello thanks thank tell know want need get got like also can't i'm it's""".split()
)
WORD = re.compile(r"[\w][\w'-]*", re.UNICODE)


def words(text: str) -> list[str]:
    return [w.lower().strip("'-") for w in WORD.findall(text)]


def key_terms(text: str) -> list[str]:
    """Content words of a text, in order, without repeats or stop words."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word not in STOPWORDS and (len(word) > 2 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)


def listing(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def require_output(data: ScoringInput) -> str:
    if not data.output_text.strip():
        raise ScorerError(
            f"The scored span ({data.span_name or data.span_id}) has no output to score."
        )
    return data.output_text


def require_question(data: ScoringInput) -> str:
    if not data.question.strip():
        raise ScorerError("The trace has no question (the scored span has no input).")
    return data.question


def reference(data: ScoringInput) -> tuple[str, str]:
    """(text to compare the answer with, what it is): the expected output if given."""
    expected = data.metadata.get("expected_output")
    if isinstance(expected, str) and expected.strip():
        return expected, "the expected output"
    return require_question(data), "the question"


@register_scorer
class Completeness(Scorer):
    """How many of the question's key terms the answer addresses (fuzzy, so "refunds"
    counts for "refund")."""

    id = "completeness"
    name = "Completeness"
    description = (
        "Share of the question's key terms that the answer addresses, allowing for "
        "inflections and typos."
    )

    def score(self, data: ScoringInput) -> ScoreResult:
        answer_words = set(words(require_output(data)))
        terms = key_terms(require_question(data))
        if not terms:
            return ScoreResult(1.0, "The question has no key terms to cover.", {"terms": []})
        covered = [t for t in terms if t in answer_words or _fuzzy_in(t, answer_words)]
        missing = [t for t in terms if t not in covered]
        reason = f"The answer addresses {len(covered)} of {len(terms)} key terms of the question"
        reason += f"; missing: {listing(missing)}." if missing else "."
        return ScoreResult(
            len(covered) / len(terms), reason, {"covered": covered, "missing": missing}
        )


def _fuzzy_in(term: str, candidates: set[str], cutoff: float = 85) -> bool:
    return len(term) > 3 and any(
        abs(len(c) - len(term)) <= 3 and fuzz.ratio(term, c) >= cutoff for c in candidates
    )


@register_scorer
class KeywordCoverage(Scorer):
    """Exact keywords: ``metadata["keywords"]`` if the trace lists them, else the
    question's key terms."""

    id = "keyword-coverage"
    name = "Keyword coverage"
    description = (
        "Share of keywords that appear word for word in the answer: the trace's "
        "metadata keywords, or the question's key terms."
    )

    def score(self, data: ScoringInput) -> ScoreResult:
        answer_words = set(words(require_output(data)))
        given = data.metadata.get("keywords")
        if isinstance(given, list) and given:
            keywords, origin = [str(k).lower() for k in given], "from the trace's metadata"
        else:
            keywords, origin = key_terms(require_question(data)), "from the question"
        if not keywords:
            return ScoreResult(1.0, "There are no keywords to look for.", {"keywords": []})
        found = [k for k in keywords if all(w in answer_words for w in words(k))]
        missing = [k for k in keywords if k not in found]
        reason = f"{len(found)} of {len(keywords)} keywords {origin} appear in the answer"
        reason += f"; missing: {listing(missing)}." if missing else "."
        return ScoreResult(len(found) / len(keywords), reason, {"found": found, "missing": missing})


@register_scorer
class ContentSimilarity(Scorer):
    """Token-set similarity of the answer to the expected output, or to the question."""

    id = "content-similarity"
    name = "Content similarity"
    description = (
        "How much the answer's wording overlaps with the expected output in the trace's "
        "metadata, or with the question when none is given (rapidfuzz token set ratio)."
    )

    def score(self, data: ScoringInput) -> ScoreResult:
        answer = require_output(data)
        other, what = reference(data)
        similarity = fuzz.token_set_ratio(answer.lower(), other.lower()) / 100
        return ScoreResult(
            similarity,
            f"The answer's wording is {similarity:.0%} similar to {what}.",
            {"compared_with": what},
        )


@register_scorer
class TextualDifference(Scorer):
    """Normalised Levenshtein similarity: 1 means identical text, 0 entirely different."""

    id = "textual-difference"
    name = "Textual difference"
    description = (
        "Character-level similarity between the answer and the expected output (or the "
        "question): 1 is identical, 0 entirely different."
    )

    def score(self, data: ScoringInput) -> ScoreResult:
        answer = require_output(data)
        other, what = reference(data)
        distance = Levenshtein.distance(answer, other)
        similarity = Levenshtein.normalized_similarity(answer, other)
        return ScoreResult(
            similarity,
            f"{distance} character edits separate the answer from {what} "
            f"({similarity:.0%} similar).",
            {"edits": distance, "compared_with": what},
        )


@cache
def _sentiment():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    return _sentiment().polarity_scores(text)["compound"]


@register_scorer
class ToneConsistency(Scorer):
    """VADER sentiment of answer vs question; without a question, stability across
    the answer's sentences."""

    id = "tone-consistency"
    name = "Tone consistency"
    description = (
        "Whether the answer keeps the tone of the question (VADER sentiment), or, without "
        "a question, keeps one tone from sentence to sentence."
    )

    def score(self, data: ScoringInput) -> ScoreResult:
        answer = require_output(data)
        if data.question.strip():
            q, a = sentiment(data.question), sentiment(answer)
            value = 1 - abs(q - a) / 2
            return ScoreResult(
                value,
                f"Sentiment of the question {q:+.2f}, of the answer {a:+.2f}: "
                f"{'consistent' if value >= 0.75 else 'a shift in'} tone.",
                {"question_sentiment": q, "answer_sentiment": a},
            )
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", answer) if s.strip()]
        scores = [sentiment(s) for s in sentences]
        spread = max(scores) - min(scores) if scores else 0.0
        value = 1 - spread / 2
        return ScoreResult(
            value,
            f"Sentiment varies by {spread:.2f} across {len(sentences)} sentences of the answer.",
            {"sentence_sentiments": scores},
        )


@register_scorer
class JsonValidity(Scorer):
    """1 when the output is JSON (structured, or a string that parses), else 0."""

    id = "json-validity"
    name = "JSON validity"
    description = "Whether the scored span's output is valid JSON."

    def score(self, data: ScoringInput) -> ScoreResult:
        output = data.output
        if output is None or (isinstance(output, str) and not output.strip()):
            raise ScorerError("The scored span has no output to check.")
        if not isinstance(output, str):
            return ScoreResult(1.0, f"The output is structured JSON ({type(output).__name__}).")
        try:
            json.loads(output)
        except ValueError as error:
            return ScoreResult(0.0, f"The output is not valid JSON: {error}.")
        return ScoreResult(1.0, "The output is a valid JSON document.")


@register_scorer
class ToolCallAccuracy(Scorer):
    """Expected tools from ``metadata["expected_tools"]``; otherwise penalise failed
    and repeated calls."""

    id = "tool-call-accuracy"
    name = "Tool-call accuracy"
    description = (
        "Whether the agent called the tools it should (metadata expected_tools), or, without "
        "expectations, how many of its tool calls neither failed nor repeated an earlier call."
    )

    def score(self, data: ScoringInput) -> ScoreResult:
        calls = data.tool_calls
        called = [c.name for c in calls]
        expected = data.metadata.get("expected_tools")
        if isinstance(expected, list) and expected:
            expected = [str(t) for t in expected]
            hit = [t for t in expected if t in called]
            missed = [t for t in expected if t not in called]
            extra = sorted({c for c in called if c not in expected})
            value = len(hit) / len(expected)
            if extra:
                value *= len(expected) / (len(expected) + len(extra))
            reason = f"Called {len(hit)} of {len(expected)} expected tools"
            reason += f"; not called: {listing(missed)}" if missed else ""
            reason += f"; unexpected: {listing(extra)}" if extra else ""
            return ScoreResult(value, reason + ".", {"called": called, "expected": expected})
        if not calls:
            return ScoreResult(1.0, "The trace made no tool calls, so none went wrong.")
        failed = [c for c in calls if c.error]
        seen: set[str] = set()
        repeated = []
        for call in calls:
            key = call.name + json.dumps(call.arguments, sort_keys=True, default=str)
            if key in seen:
                repeated.append(call)
            seen.add(key)
        bad = {c.span_id for c in failed} | {c.span_id for c in repeated}
        value = 1 - len(bad) / len(calls)
        parts = [f"{len(calls) - len(bad)} of {len(calls)} tool calls went right"]
        if failed:
            parts.append(
                "failed: " + listing([f"{c.name} ({c.error[:80]})" for c in failed], limit=3)
            )
        if repeated:
            parts.append("repeated with the same arguments: " + listing([c.name for c in repeated]))
        return ScoreResult(
            value,
            "; ".join(parts) + ".",
            {"failed": [c.span_id for c in failed], "repeated": [c.span_id for c in repeated]},
        )


@register_scorer
class Latency(Scorer):
    """1 within the budget (``TRACESCORE_LATENCY_BUDGET_MS``), then budget / duration."""

    id = "latency"
    name = "Latency"
    description = "How the trace's duration compares with the latency budget (1 = within budget)."

    def score(self, data: ScoringInput) -> ScoreResult:
        budget = data.metadata.get("latency_budget_ms") or settings.TRACESCORE_LATENCY_BUDGET_MS
        budget = float(budget)
        if data.duration_ms is None:
            raise ScorerError("The scored span has not ended, so it has no duration.")
        took = data.duration_ms
        value = 1.0 if took <= budget else budget / took
        verdict = "within" if took <= budget else "over"
        return ScoreResult(
            value,
            f"Took {took / 1000:.2f} s, {verdict} the budget of {budget / 1000:.2f} s.",
            {"duration_ms": took, "budget_ms": budget},
        )


@register_scorer
class ErrorFree(Scorer):
    """1 when no span of the trace failed, else 0 with the failing spans named."""

    id = "error-free"
    name = "Error free"
    description = "Whether the whole trace ran without a failed span."

    def score(self, data: ScoringInput) -> ScoreResult:
        errors = data.error_spans
        if not errors:
            return ScoreResult(1.0, f"None of the {len(data.spans)} spans failed.")
        named = [f"{s.name} ({s.error_message[:80] or 'no message'})" for s in errors]
        return ScoreResult(
            0.0,
            f"{len(errors)} of {len(data.spans)} spans failed: {listing(named, limit=3)}.",
            {"error_spans": [s.span_id for s in errors]},
        )
