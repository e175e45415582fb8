"""Built-in code scorers: no network, deterministic, every score in [0, 1].

Each reads only its ``ScoringInput``. Scorers that judge the answer raise
``ScorerError`` when the scored span has no output, since a 0 would read as
"a bad answer" when there is no answer at all.
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache

import simplemma
import stopwords
from django.conf import settings
from rapidfuzz import fuzz, utils
from rapidfuzz.distance import Levenshtein

from scoring.inputs import produced_text
from scoring.scorers.base import (
    ANSWER_SPANS,
    RUN_SPANS,
    Scorer,
    ScorerError,
    ScoreResult,
    ScorerSkipped,
    ScoringInput,
)
from scoring.scorers.registry import register_scorer

LANGUAGE = "en"
# The ``stopwords`` package's list is the short, classic one (pronouns, articles,
# auxiliaries). The longer search-engine lists of ``stop-words`` and
# ``stopwordsiso`` also drop words that carry a support question, such as
# "order", "bill", "computer", "work" or "problem". On top of it, the phrasing
# of a request and greetings, which no answer needs to repeat.
QUESTION_PHRASING = frozenset(
    "hi hello hey please thanks thank tell know want need get like also let can".split()
)
STOPWORDS = frozenset(stopwords.get_stopwords("english")) | QUESTION_PHRASING
WORD = re.compile(r"\w[\w'’-]*", re.UNICODE)
# E-mail addresses and links are identifiers, not words: "jane@example.com" is
# not about "example" or "com".
ADDRESS = re.compile(r"\S+@\S+|\b(?:https?://|www\.)\S+", re.IGNORECASE)
HEX_ID = re.compile(r"^[0-9a-f]{12,}$")


def words(text: str) -> list[str]:
    """The words of a text, lower-cased, with addresses and links left out."""
    return [w.lower().strip("'’-") for w in WORD.findall(ADDRESS.sub(" ", text))]


@lru_cache(maxsize=50_000)  # bounded: a worker reads an open-ended vocabulary
def lemma(word: str) -> str:
    """The dictionary form of a word (simplemma): "returning" → "return"."""
    return simplemma.lemmatize(word, lang=LANGUAGE).lower()


def is_identifier(word: str) -> bool:
    """Numbers, order numbers, ids and hashes: "1042", "a-77", "ord_9f", "deadbeefcafe"."""
    return any(c.isdigit() for c in word) or "_" in word or bool(HEX_ID.match(word))


def content_words(text: str) -> list[str]:
    """The words that carry a text's meaning, in order, without repeats: no stop
    words, no words under three letters, no numbers or ids."""
    seen: dict[str, None] = {}
    for word in words(text):
        if len(word) < 3 or is_identifier(word) or word in STOPWORDS:
            continue
        if lemma(word) not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


def key_terms(text: str) -> dict[str, str]:
    """Key terms of a text: lemma → the word as the text spells it, in order."""
    terms: dict[str, str] = {}
    for word in content_words(text):
        terms.setdefault(lemma(word), word)
    return terms


def lemmas(text: str) -> set[str]:
    return {lemma(w) for w in words(text)}


def listing(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def require_output(data: ScoringInput) -> str:
    if not data.output_text.strip():
        span = data.span_name or data.span_id
        if data.output is None or (isinstance(data.output, str) and not data.output.strip()):
            raise ScorerError(f"The scored span ({span}) has no output to score.")
        raise ScorerError(
            f"The scored span ({span}) has no output text to score: its output holds no "
            "message or text, only structure, numbers or flags."
        )
    return data.output_text


def require_question(data: ScoringInput) -> str:
    if not data.question.strip():
        raise ScorerError(
            "The trace has no question to check the answer against: the scored span's "
            "input has no user message."
        )
    return data.question


def reference(data: ScoringInput) -> tuple[str, str]:
    """(text to compare the answer with, what it is): the expected output if given."""
    expected = data.metadata.get("expected_output")
    if isinstance(expected, str) and expected.strip():
        return expected, "the expected output"
    return require_question(data), "the question"


@register_scorer
class Completeness(Scorer):
    """How many of the question's key terms the answer addresses.

    Key terms are the question's content words (stop words, numbers and ids
    left out), compared by lemma so "returning" counts for "return", with a
    little typo tolerance (rapidfuzz). A question without key terms ("Hi") has
    nothing to check, so the Score is skipped with that reason instead of a 1.0.
    """

    id = "completeness"
    span_types = ANSWER_SPANS
    name = "Completeness"
    version = "2"
    description = (
        "Share of the question's key terms (content words, not numbers or ids) that the "
        "answer addresses, allowing for inflections and typos."
    )

    def score(self, data: ScoringInput) -> ScoreResult:
        answer = lemmas(require_output(data))
        terms = key_terms(require_question(data))
        if not terms:
            raise ScorerSkipped(
                "The question has no key terms to check the answer against "
                "(only greetings, stop words or numbers), so completeness does not apply."
            )
        covered = [w for t, w in terms.items() if t in answer or _fuzzy_in(t, answer)]
        missing = [w for w in terms.values() if w not in covered]
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
    question's content words; each must appear word for word in the answer."""

    id = "keyword-coverage"
    span_types = ANSWER_SPANS
    name = "Keyword coverage"
    version = "2"
    description = (
        "Share of keywords that appear word for word in the answer: the trace's "
        "metadata keywords, or the question's content words (not numbers or ids)."
    )

    def score(self, data: ScoringInput) -> ScoreResult:
        answer_words = set(words(require_output(data)))
        given = data.metadata.get("keywords")
        if isinstance(given, list) and given:
            keywords, origin = [str(k).lower() for k in given], "from the trace's metadata"
        else:
            keywords, origin = content_words(require_question(data)), "from the question"
        if not keywords:
            raise ScorerError(
                "There are no keywords to look for: the trace's metadata lists none and the "
                "question has no content words (only greetings, stop words or numbers)."
            )
        found = [k for k in keywords if all(w in answer_words for w in words(k))]
        missing = [k for k in keywords if k not in found]
        reason = f"{len(found)} of {len(keywords)} keywords {origin} appear in the answer"
        reason += f"; missing: {listing(missing)}." if missing else "."
        return ScoreResult(len(found) / len(keywords), reason, {"found": found, "missing": missing})


@register_scorer
class ContentSimilarity(Scorer):
    """Word overlap of the answer with the expected output, or with the question.

    rapidfuzz's ``token_sort_ratio`` on lower-cased text without punctuation:
    the words of each text are sorted, then compared character by character
    (Indel similarity). Word order does not matter, but every missing or extra
    word lowers the score, so a one-word answer ("1042") scores low against
    "Your order 1042 shipped yesterday…" (0.14). The token *set* ratio used
    before scored any subset 1.0. Mastra's counterpart uses Dice similarity of
    character bigrams, which behaves alike on these cases; this keeps to the
    library the other text scorers use.
    """

    id = "content-similarity"
    span_types = ANSWER_SPANS
    name = "Content similarity"
    version = "2"
    description = (
        "How much the answer's wording overlaps with the expected output in the trace's "
        "metadata, or with the question when none is given, in any word order; missing "
        "and extra words lower it (rapidfuzz token sort ratio)."
    )

    def score(self, data: ScoringInput) -> ScoreResult:
        answer = require_output(data)
        other, what = reference(data)
        similarity = fuzz.token_sort_ratio(answer, other, processor=utils.default_process) / 100
        return ScoreResult(
            similarity,
            f"The answer's wording is {similarity:.0%} similar to {what}.",
            {"compared_with": what},
        )


@register_scorer
class TextualDifference(Scorer):
    """Normalised Levenshtein similarity: 1 means identical text, 0 entirely different."""

    id = "textual-difference"
    span_types = ANSWER_SPANS
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
    span_types = ANSWER_SPANS
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
    """1 when the span produced a JSON object or array, else 0.

    Judges the text the span produced: a string output, or the answer's content
    when the output is a chat (a GenAI output message whose content is
    ``{broken`` scores 0). A bare number or string ("42", ``"hello"``) parses
    as JSON but is not what a caller expecting structured output can use, so it
    scores 0 with that reason. Any other structured output was sent as JSON and
    decoded at ingest, so it scores 1.
    """

    id = "json-validity"
    name = "JSON validity"
    version = "2"
    description = (
        "Whether the text the scored span produced (its output, or its answer message) is "
        "a JSON object or array."
    )

    def score(self, data: ScoringInput) -> ScoreResult:
        output = data.output
        text = produced_text(output)
        if output is None or (text is not None and not text.strip()):
            raise ScorerError(
                f"The scored span ({data.span_name or data.span_id}) has no output to check."
            )
        if text is None:
            kind = "an object" if isinstance(output, dict) else "an array"
            if not isinstance(output, (dict, list)):
                return ScoreResult(
                    0.0, f"The output is {json.dumps(output)}, not a JSON object or array."
                )
            return ScoreResult(1.0, f"The output is structured: a JSON document ({kind}).")
        try:
            value = json.loads(text)
        except ValueError as error:
            return ScoreResult(0.0, f"The output is not valid JSON: {error}.")
        if not isinstance(value, (dict, list)):
            kind = {str: "a string", bool: "a boolean", type(None): "null"}.get(
                type(value), "a number"
            )
            return ScoreResult(0.0, f"The output is JSON {kind}, not a JSON object or array.")
        kind = "an object" if isinstance(value, dict) else "an array"
        return ScoreResult(1.0, f"The output is a valid JSON document ({kind}).")


@register_scorer
class ToolCallAccuracy(Scorer):
    """Expected tools from ``metadata["expected_tools"]``; otherwise penalise failed
    and repeated calls.

    An expected tool counts only when a call to it succeeded: a call that
    failed did not do the tool's work. A repeat is a call with the same name
    and the same recorded arguments as an earlier call that succeeded; a call
    whose arguments were not recorded is never a repeat, since nothing shows it
    asked for the same thing.
    """

    id = "tool-call-accuracy"
    span_types = RUN_SPANS
    name = "Tool-call accuracy"
    version = "2"
    description = (
        "Whether the agent called the tools it should, successfully (metadata expected_tools), "
        "or, without expectations, how many of its tool calls neither failed nor repeated an "
        "earlier successful call with the same arguments."
    )

    def score(self, data: ScoringInput) -> ScoreResult:
        calls = data.tool_calls
        called = [c.name for c in calls]
        expected = data.metadata.get("expected_tools")
        if isinstance(expected, list) and expected:
            return self._against_expected([str(t) for t in expected], data)
        if not calls:
            return ScoreResult(1.0, "The trace made no tool calls, so none went wrong.")
        failed = [c for c in calls if c.error]
        done: set[str] = set()
        repeated = []
        for call in calls:
            if call.arguments is None or call.error:
                continue
            key = call.name + json.dumps(call.arguments, sort_keys=True, default=str)
            if key in done:
                repeated.append(call)
            done.add(key)
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
            {
                "called": called,
                "failed": [c.span_id for c in failed],
                "repeated": [c.span_id for c in repeated],
            },
        )

    def _against_expected(self, expected: list[str], data: ScoringInput) -> ScoreResult:
        calls = data.tool_calls
        called = [c.name for c in calls]
        succeeded = {c.name for c in calls if not c.error}
        hit = [t for t in expected if t in succeeded]
        failed = [t for t in expected if t in called and t not in succeeded]
        missed = [t for t in expected if t not in called]
        extra = sorted({c for c in called if c not in expected})
        value = len(hit) / len(expected)
        if extra:
            value *= len(expected) / (len(expected) + len(extra))
        reason = f"Called {len(hit)} of {len(expected)} expected tools successfully"
        if failed:
            errors = {c.name: c.error for c in calls if c.error}
            reason += "; failed: " + listing([f"{t} ({errors[t][:80]})" for t in failed], limit=3)
        reason += f"; not called: {listing(missed)}" if missed else ""
        reason += f"; unexpected: {listing(extra)}" if extra else ""
        return ScoreResult(
            value,
            reason + ".",
            {"called": called, "expected": expected, "failed": failed},
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
        if data.duration_ms < 0:
            # Ingest rejects such spans; rows stored before it did may remain.
            raise ScorerError("The scored span ends before it starts: its clock is wrong.")
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
