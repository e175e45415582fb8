"""What judges cost: estimates before a batch starts, and cost caps while it runs.

Estimates (``estimate_batch``) count, with OpenAI's tokenizer
(``scoring.scorers.tokens``), the prompts each judge would send for each target:
the judge's own code builds them, with an ``EstimateRun`` in place of the
model. A step whose prompt is built from what an earlier step answered (the
verdicts step quotes the statements the extract step found) cannot be known
before the model answers, so each earlier answer is *assumed* (``assumed_answer``):

- a list the model extracts from a text (statements, claims, opinions,
  requirements, semantic units) holds one item per sentence of that text
  (sentences end at ``.``, ``!`` or ``?`` followed by a space, or at a line end);
- a list of per-item verdicts holds exactly the items the step asks about, each
  repeating its item, with a reason as long as the item, the first choice of
  each verdict (``"yes"``), ``true`` for yes/no fields and 1 for scores;
- other lists (what is missing, extra or contradicted) are empty, and other text
  fields (an overall reason) are empty.

The completion tokens are the tokens of those assumed answers as JSON. Repair
requests (sent only for a malformed answer) and the JSON schema sent as
``response_format`` are not counted.

For a selection of more than ``TRACESCORE_ESTIMATE_EXACT_LIMIT`` targets, that
many are counted, chosen by the SHA-256 of their ids (the same selection always
gives the same sample), and each scorer's totals are scaled by its targets over
its counted targets; ``sampled`` says how many were counted.

Cost caps (``pre_run_skip_reason``): a batch (``ScoringBatch.max_cost_usd``) or
a rule (``ScoringRule.max_cost_usd``) may cap what its judges spend. Before a
judge Score runs, the cost its batch's (or rule's) Scores already recorded is
summed; once it reaches the cap, the Score is skipped with the reason "cost cap
reached ($X of $Y spent)". A runner that starts judges side by side asks
``cap_budgets`` instead, and starts no more of them at once than the money
left pays for at the cap's average cost per Score so far (``CapBudget.admits``),
so a worker spends what it would one Score after another; another worker on
the same batch may run one Score more. Judges whose model has no price record
no cost and are never stopped by a cap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from django.conf import settings
from django.db.models import Count, Sum
from pydantic import BaseModel

from scoring.choices import ScopeType
from scoring.inputs import build_scoring_input
from scoring.models import COST_CAP_REASON, Score, ScoringBatch, ScoringRule
from scoring.scorers import ScorerError, registry
from scoring.scorers.base import Scorer, ScoringInput
from scoring.scorers.judging import SYSTEM, cost_usd, judge_config
from scoring.scorers.tokens import count_messages, count_text, encoding_name, get_encoding

if TYPE_CHECKING:
    from scoring.services import BatchPlan

log = logging.getLogger(__name__)

__all__ = [
    "COST_CAP_REASON",
    "cap_budgets",
    "estimate_batch",
    "format_usd",
    "pre_run_skip_reason",
]

# --- money ------------------------------------------------------------------


def format_usd(value: float | None) -> str:
    """A cost in US dollars; small costs keep their significant digits."""
    if value is None:
        return "cost unknown"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.6f}".rstrip("0")
    return f"${value:,.2f}"


# --- assumed answers ----------------------------------------------------------

SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")
BLOCK = re.compile(r"^(?P<title>[^\n]+):\n<<<\n(?P<body>.*?)\n>>>", re.DOTALL | re.MULTILINE)
NUMBER = re.compile(r"(?m)^(\d+)\. ")
# Lists a judge's step extracts from a text, and the titles of the prompt's
# blocks holding that text (see ``scoring.scorers.judges.block``).
EXTRACTED_FROM = {
    "statements": ("Text",),
    "claims": ("Text",),
    "opinions": ("Text",),
    "output_units": ("Output",),
    "expected_units": ("Expected output",),
    "requirements": ("System prompt", "User's request"),
}


def sentences(text: str) -> list[str]:
    return [piece.strip() for piece in SENTENCE_END.split(text) if piece.strip()]


def prompt_blocks(prompt: str) -> list[tuple[str, str]]:
    """The (title, text) of each fenced block of a judge prompt; "(none)" is empty."""
    found = []
    for match in BLOCK.finditer(prompt):
        body = match.group("body")
        found.append((match.group("title").strip(), "" if body.strip() == "(none)" else body))
    return found


def numbered_items(text: str) -> list[str]:
    """The items of a ``1. … 2. …`` list, in order."""
    parts = NUMBER.split(text)
    return [item.strip() for item in parts[2::2]]


def _asked_items(prompt: str, expected: int | list[str]) -> list[str]:
    """The items a verdicts step asks about: given, or its numbered block of that length."""
    if isinstance(expected, list):
        return expected
    for _, body in prompt_blocks(prompt):
        items = numbered_items(body)
        if len(items) == expected:
            return items
    return [""] * expected


def _value(annotation: Any, text: str, position: int) -> Any:
    origin = get_origin(annotation)
    if origin is Literal:
        return get_args(annotation)[0]
    if origin in (Union, types.UnionType):
        return _value(next(a for a in get_args(annotation) if a is not type(None)), text, position)
    if origin is list:
        return []
    if annotation is bool:
        return True
    if annotation is int:
        return position
    if annotation is float:
        return 1.0
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _build(annotation, text, position, {})
    return text


def _build(model: type[BaseModel], text: str, position: int, lists: dict[str, list[str]]):
    answer: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if get_origin(annotation) is list and name in lists:
            (inner,) = get_args(annotation)
            answer[name] = [
                item if inner is str else _build(inner, item, i, {})
                for i, item in enumerate(lists[name], 1)
            ]
        else:
            answer[name] = _value(annotation, text, position)
    return answer


def assumed_answer(schema: type[BaseModel], prompt: str, check=None) -> dict[str, Any]:
    """The answer assumed for a step (see the module docstring), as a JSON object."""
    lists: dict[str, list[str]] = {}
    expected = getattr(check, "expected", None)
    if expected:
        attr, count = expected
        lists[attr] = _asked_items(prompt, count)
    blocks = prompt_blocks(prompt)
    for name, titles in EXTRACTED_FROM.items():
        if name in schema.model_fields and name not in lists:
            lists[name] = [s for title, body in blocks if title in titles for s in sentences(body)]
    return _build(schema, "", 0, lists)


class EstimateRun:
    """Stands in for ``JudgeRun``: counts each step's prompt and answers it as assumed."""

    def __init__(self, encoding) -> None:
        self.encoding = encoding
        self.steps: list[dict[str, Any]] = []

    def ask(self, name: str, prompt: str, schema: type[BaseModel], *, check=None):
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        answer = assumed_answer(schema, prompt, check)
        raw = json.dumps(answer, ensure_ascii=False)
        self.steps.append(
            {
                "name": name,
                "prompt_tokens": count_messages(messages, self.encoding),
                "completion_tokens": count_text(raw, self.encoding),
                "answer": raw,
            }
        )
        return schema.model_validate(answer)

    @property
    def prompt_tokens(self) -> int:
        return sum(step["prompt_tokens"] for step in self.steps)

    @property
    def completion_tokens(self) -> int:
        return sum(step["completion_tokens"] for step in self.steps)


def judge_tokens(scorer: Scorer, data: ScoringInput, encoding) -> EstimateRun:
    """The steps ``scorer`` (a judge) would send for ``data``, counted. A target the judge
    refuses before any call (no answer, no context…) costs nothing."""
    run = EstimateRun(encoding)
    try:
        scorer.check(data)
    except ScorerError:
        return run
    try:
        scorer.judge(run, data)
    except Exception:  # its arithmetic on assumed answers; the steps asked are counted
        log.debug("Judge %s stopped on an assumed answer", scorer.id, exc_info=True)
    return run


# --- estimates ---------------------------------------------------------------


@dataclass
class ScorerEstimate:
    scorer_id: str
    scorer_name: str
    scores: int  # Scores that will run (targets the scorer applies to)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    priced: bool = True


@dataclass
class BatchEstimate:
    scorers: list[ScorerEstimate] = field(default_factory=list)
    model: str | None = None
    encoding: str | None = None
    sampled: int = 0  # 0: every target counted; else how many were, the rest scaled

    @property
    def prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.scorers)

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.scorers)

    @property
    def cost_usd(self) -> float | None:
        costs = [s.cost_usd for s in self.scorers]
        return None if None in costs else round(sum(costs), 8)

    @property
    def priced(self) -> bool:
        return all(s.priced for s in self.scorers)


def _digest(*parts: Any) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


def _counted_targets(plan: BatchPlan, limit: int) -> tuple[list[tuple[str, str, str]], int]:
    """(trace id, span id or "" for the root, span type) of the targets to count, and
    how many were sampled (0 when all of them are counted)."""
    from observability.models import Span, Trace

    if plan.scope_type == ScopeType.SPAN:
        pks = sorted(plan.span_pks, key=_digest) if len(plan.span_pks) > limit else plan.span_pks
        pks = pks[:limit]
        rows = Span.objects.filter(pk__in=pks).values_list("pk", "trace_id", "span_id", "span_type")
        by_pk = {pk: (trace_id, span_id, kind) for pk, trace_id, span_id, kind in rows}
        targets = [by_pk[pk] for pk in pks if pk in by_pk]
        total = len(plan.span_pks)
    else:
        ids = sorted(plan.trace_ids, key=_digest) if len(plan.trace_ids) > limit else plan.trace_ids
        ids = ids[:limit]
        kinds = dict(Trace.objects.filter(trace_id__in=ids).values_list("trace_id", "span_type"))
        targets = [(trace_id, "", kinds.get(trace_id, "")) for trace_id in ids]
        total = len(plan.trace_ids)
    return targets, (len(targets) if total > limit else 0)


def estimate_batch(plan: BatchPlan) -> BatchEstimate:
    """Tokens and cost a batch's judges would use, before it starts; code scorers cost 0."""
    estimate = BatchEstimate()
    judges = [s for s in plan.scorers if s.kind == "llm"]
    rows = {
        s.id: ScorerEstimate(
            scorer_id=s.id, scorer_name=s.name, scores=plan.target_count - plan.skip_count(s)
        )
        for s in plan.scorers
    }
    estimate.scorers = list(rows.values())
    if not judges:
        return estimate
    model = judge_config()[2]
    estimate.model, estimate.encoding = model, encoding_name(model)
    encoding = get_encoding(estimate.encoding)
    targets, estimate.sampled = _counted_targets(plan, settings.TRACESCORE_ESTIMATE_EXACT_LIMIT)
    counted = dict.fromkeys(rows, 0)
    for trace_id, span_id, kind in targets:
        applying = [j for j in judges if plan.scope_type != ScopeType.SPAN or j.applies_to(kind)]
        if not applying:
            continue
        try:
            if plan.scope_type == ScopeType.SPAN:
                data = build_scoring_input(trace_id, span_id=span_id, scope=ScopeType.SPAN)
            else:
                data = build_scoring_input(trace_id)
        except Exception:  # the Score would fail before any call: it costs nothing
            data = None
        for judge in applying:
            counted[judge.id] += 1
            if data is None:
                continue
            run = judge_tokens(judge, data, encoding)
            rows[judge.id].prompt_tokens += run.prompt_tokens
            rows[judge.id].completion_tokens += run.completion_tokens
    for judge in judges:
        row = rows[judge.id]
        if counted[judge.id] and counted[judge.id] != row.scores:
            scale = row.scores / counted[judge.id]
            row.prompt_tokens = round(row.prompt_tokens * scale)
            row.completion_tokens = round(row.completion_tokens * scale)
        row.cost_usd = cost_usd(model, row.prompt_tokens, row.completion_tokens)
        row.priced = row.cost_usd is not None
    return estimate


# --- caps --------------------------------------------------------------------


def _cap(score: Score, relation: str, model) -> float | None:
    """The ``max_cost_usd`` of the Score's batch or rule: from the related object when it
    was loaded with the Score (``select_related``), else one query."""
    pk = getattr(score, f"{relation}_id")
    if pk is None:
        return None
    if Score._meta.get_field(relation).is_cached(score):
        related = getattr(score, relation)
        return related.max_cost_usd if related is not None else None
    return model.objects.filter(pk=pk).values_list("max_cost_usd", flat=True).first()


@dataclass
class CapBudget:
    """One cost cap over a Score (its batch's or its rule's) and what it has spent.

    ``average`` is what a costed Score under this cap cost on average so far
    (None before the first one was recorded): a runner uses it to start no more
    judges at once than the money left can pay for.
    """

    key: tuple[str, Any]
    cap: float
    spent: float
    average: float | None

    @property
    def reached(self) -> bool:
        return self.spent >= self.cap

    def admits(self, running: int) -> bool:
        """Whether one more judge may start beside ``running`` already under this cap."""
        if self.reached:
            return False
        if running == 0:
            return True
        if self.average is None:  # the first one's cost is not known yet
            return False
        return self.spent + (running + 1) * self.average <= self.cap

    def reason(self) -> str:
        whose = "" if self.key[0] == "batch" else " by the rule"
        return (
            f"{COST_CAP_REASON} ({format_usd(self.spent)} of {format_usd(self.cap)} spent{whose})"
        )


def cap_budgets(score: Score) -> list[CapBudget]:
    """The cost caps over this judge Score and what each has spent: none for a code
    scorer, an unknown one, or a Score under no cap (then no query). One aggregate
    per cap otherwise (sum and count over the index of costed Scores)."""
    if score.batch_id is None and score.rule_id is None:
        return []
    try:
        scorer = registry.get(score.scorer_id)
    except registry.UnknownScorer:
        return []  # the run fails it, saying so
    if scorer.kind != "llm":
        return []
    budgets = []
    for relation, model in (("batch", ScoringBatch), ("rule", ScoringRule)):
        cap = _cap(score, relation, model)
        if cap is None:
            continue
        pk = getattr(score, f"{relation}_id")
        totals = Score.objects.filter(cost_usd__isnull=False, **{f"{relation}_id": pk}).aggregate(
            spent=Sum("cost_usd"), costed=Count("id")
        )
        spent = float(totals["spent"] or 0.0)
        average = spent / totals["costed"] if totals["costed"] else None
        budgets.append(CapBudget(key=(relation, pk), cap=cap, spent=spent, average=average))
    return budgets


def pre_run_skip_reason(score: Score) -> str | None:
    """Why this pending Score must be skipped instead of run, or None to run it.

    Called right before its scorer runs. ``score`` needs ``scorer_id``,
    ``batch_id`` and ``rule_id``; when ``batch``/``rule`` were loaded with it
    (``select_related("batch", "rule")``) their caps cost no query. Only judges
    are capped (code scorers cost nothing); a Score under no cap costs no query.
    Otherwise one aggregate per cap: the cost already spent by the batch's (or
    the rule's) Scores. Returns "cost cap reached ($X of $Y spent)" once that
    reaches the cap.
    """
    for budget in cap_budgets(score):
        if budget.reached:
            return budget.reason()
    return None
