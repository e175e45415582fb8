"""Scoring rules: every write about them, live scoring of finished traces, backfills and retries.

A rule scores every trace that matches its filter, with its scorers, at its
sample rate (decided from the trace id, so one trace always gets the same
decision). What it did with each trace it considered is one ``RuleOutcome``
row per (rule, trace): the audit.

**Live scoring.** Ingest tells this module which traces got spans (an ingest
listener, registered in ``ScoringConfig.ready``). When an active live rule
exists, each such trace with a root span gets a ``LiveCandidate`` row due
``TRACESCORE_LIVE_SETTLE_SECONDS`` later; every later span pushes it back. So
a trace is *finished* when its root arrived and ended and no span of it arrived
for the settle window. One sweeper task at a time (a lease on the
``LiveSweeper`` row) takes the due candidates set-based, matches every active
live rule against them once, writes the outcomes and Scores (one batch per rule
per sweep) and queues the Scores; it loops, sleeping until the next due time,
for at most ``TRACESCORE_LIVE_SWEEPER_SECONDS``, then hands over to a fresh
task. The per-minute sweep of ``scoring.tasks.requeue_stale_scores`` wakes it
when candidates were left waiting.

**Backfills and filter-wide batches** answer at once: the batch is created
``fanning_out`` and a task adds its Scores chunk by chunk (newest traces
first, ``FANOUT_CHUNK`` traces per transaction), queueing each chunk's Scores
as it lands. The batch is finished only after its last chunk.

**Outcomes follow their Scores**: when a rule's Score finishes (recorded,
skipped or given up), ``settle_outcomes`` turns the trace's outcome into
scored, failed or skipped.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django_q.tasks import async_task

from observability.choices import SpanStatus, SpanType
from observability.filters import MAX_DURATION_MS, filter_metadata
from observability.models import Span, Trace
from scoring import services
from scoring.choices import RuleOutcomeKind, ScopeType, ScoreSource, ScoreStatus
from scoring.models import (
    TRACE_TARGET,
    LiveCandidate,
    LiveSweeper,
    RuleOutcome,
    Score,
    ScoringBatch,
    ScoringRule,
    ScoringRuleVersion,
)
from scoring.scorers import registry
from scoring.scorers.base import Scorer

log = logging.getLogger(__name__)

RULE_FILTER_KEYS = (
    "name",
    "type",
    "status",
    "service",
    "metadata",
    "minDurationMs",
    "maxDurationMs",
)
# Trace list GET parameter of each rule filter key (metadata: one "key=value" each).
PARAM_OF_KEY = {
    "name": "name",
    "type": "type",
    "status": "status",
    "service": "service",
    "metadata": "metadata",
    "minDurationMs": "min_duration_ms",
    "maxDurationMs": "max_duration_ms",
}
VERSIONED_FIELDS = ("scorer_ids", "filter", "target", "sample_rate")
MAX_RULE_SCORERS = services.MAX_BATCH_SCORERS
MAX_METADATA_KEYS = 20
MAX_FILTER_TRACES = 1_000_000
# Traces per fan-out transaction, and how long one fan-out task keeps going
# before it hands over to the next (well below the task timeout).
FANOUT_CHUNK = 2_000
FANOUT_TASK_SECONDS = 30
FANOUT_TASK = "scoring.tasks.fan_out_batch"
SWEEP_TASK = "scoring.tasks.run_live_sweeper"
# Due candidates taken per sweep transaction.
LIVE_CHUNK = 1_000
# How long "is any live rule active?" is remembered by an ingest process.
LIVE_RULE_CACHE_SECONDS = 1.0
# A queued sweeper that has not started within this is queued again.
WAKE_GRACE = timedelta(seconds=10)
# The sweeper holds its lease this much longer than it plans to sleep.
SWEEPER_LEASE = timedelta(seconds=30)
# The sweeper waits at least this long between passes, so busy ingest makes
# a batch per rule every so often, not one per trace.
MIN_SWEEP_PAUSE = 0.2
SWEEPER_ROW = 1


class RuleError(services.BatchError):
    """A rule request that cannot be done; the message is for a person."""

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code


# ---------------------------------------------------------------------------
# Filters


def _text(data: Mapping, key: str, max_length: int) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RuleError(f"filter.{key} must be text.")
    if "\x00" in value:
        raise RuleError(f"filter.{key} must not contain NUL characters.")
    if len(value) > max_length:
        raise RuleError(f"filter.{key} takes at most {max_length} characters.")
    return value.strip()


def _duration(data: Mapping, key: str) -> float | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise RuleError(f"filter.{key} must be a number of milliseconds.") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuleError(f"filter.{key} must be a number of milliseconds.")
    if not 0 <= value <= MAX_DURATION_MS:
        raise RuleError(f"filter.{key} must be between 0 and {MAX_DURATION_MS:,}.")
    return int(value) if float(value).is_integer() else float(value)


def clean_filter(data: Any) -> dict:
    """The rule filter ``data`` checked and normalised; ``RuleError`` says what is wrong.

    Keys: ``name`` (part of the trace name), ``type`` (root span type), ``status``,
    ``service`` (exact), ``metadata`` ({key: value}, all must match),
    ``minDurationMs``/``maxDurationMs``. Empty values are dropped.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise RuleError("filter must be an object with the trace list's fields.")
    unknown = sorted(str(k) for k in data if k not in RULE_FILTER_KEYS)
    if unknown:
        raise RuleError(
            f"filter has unknown field(s) {', '.join(unknown)}; it takes "
            f"{', '.join(RULE_FILTER_KEYS)}."
        )
    cleaned: dict[str, Any] = {}
    for key, limit in (("name", 512), ("service", 256)):
        if value := _text(data, key, limit):
            cleaned[key] = value
    for key, choices in (("type", SpanType.values), ("status", SpanStatus.values)):
        value = _text(data, key, 32)
        if value and value not in choices:
            raise RuleError(f"filter.{key} must be one of {', '.join(choices)}; got {value!r}.")
        if value:
            cleaned[key] = value
    metadata = data.get("metadata")
    if metadata not in (None, "", {}):
        if not isinstance(metadata, Mapping):
            raise RuleError('filter.metadata must be an object of {"key": "value"}.')
        if len(metadata) > MAX_METADATA_KEYS:
            raise RuleError(f"filter.metadata takes at most {MAX_METADATA_KEYS} keys.")
        pairs = {}
        for key, value in metadata.items():
            key = str(key).strip()
            if not key or len(key) > 200 or "=" in key or "\x00" in key:
                raise RuleError(
                    "filter.metadata keys must be 1 to 200 characters, without '=' or NUL."
                )
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise RuleError(f"filter.metadata[{key!r}] must be text or a number.")
            value = str(value)
            if len(value) > 1000 or "\x00" in value:
                raise RuleError(
                    f"filter.metadata[{key!r}] takes at most 1000 characters, without NUL."
                )
            pairs[key] = value
        cleaned["metadata"] = pairs
    low, high = _duration(data, "minDurationMs"), _duration(data, "maxDurationMs")
    if low is not None and high is not None and low > high:
        raise RuleError("filter.minDurationMs must not exceed filter.maxDurationMs.")
    if low is not None:
        cleaned["minDurationMs"] = low
    if high is not None:
        cleaned["maxDurationMs"] = high
    return cleaned


def filter_from_params(params: Mapping) -> dict:
    """The trace list's GET parameters as a rule filter (time range and scored_by left out).

    Several ``metadata=key=value`` parameters become several metadata keys.
    """
    getlist = getattr(params, "getlist", None)
    data: dict[str, Any] = {}
    for key, param in PARAM_OF_KEY.items():
        if key == "metadata":
            values = getlist(param) if getlist else params.get(param)
            if isinstance(values, str):
                values = [values]
            pairs = {}
            for value in values or []:
                if value:
                    name, _, wanted = str(value).partition("=")
                    if not name.strip():
                        raise RuleError("metadata must be key=value.")
                    pairs[name.strip()] = wanted
            if pairs:
                data["metadata"] = pairs
        elif params.get(param) not in (None, ""):
            data[key] = params.get(param)
    return clean_filter(data)


def params_from_filter(rule_filter: Mapping) -> dict[str, str | list[str]]:
    """A rule filter as trace list GET parameters, for a "show these traces" link.

    ``metadata`` is a list of ``"key=value"`` strings (one per key): encode with
    ``urlencode(params, doseq=True)``. The trace list applies one metadata
    parameter, so with several keys the list shows a superset of the rule's traces.
    """
    cleaned = clean_filter(rule_filter)
    params: dict[str, str | list[str]] = {}
    for key, param in PARAM_OF_KEY.items():
        if key not in cleaned:
            continue
        if key == "metadata":
            params[param] = [f"{k}={v}" for k, v in cleaned["metadata"].items()]
        else:
            params[param] = str(cleaned[key])
    return params


def matching_traces(rule_filter: Mapping) -> QuerySet:
    """The traces a rule filter matches (as the trace list with the same filter)."""
    cleaned = clean_filter(rule_filter)
    traces = Trace.objects.all()
    if "name" in cleaned:
        traces = traces.filter(name__icontains=cleaned["name"])
    if "type" in cleaned:
        traces = traces.filter(span_type=cleaned["type"])
    if "status" in cleaned:
        traces = traces.filter(status=cleaned["status"])
    if "service" in cleaned:
        traces = traces.filter(service_name=cleaned["service"])
    for key, wanted in cleaned.get("metadata", {}).items():
        traces = filter_metadata(traces, key, wanted)
    if "minDurationMs" in cleaned:
        traces = traces.filter(duration_ms__gte=cleaned["minDurationMs"])
    if "maxDurationMs" in cleaned:
        traces = traces.filter(duration_ms__lte=cleaned["maxDurationMs"])
    return traces


# ---------------------------------------------------------------------------
# Sampling


def sample_point(trace_id: str, salt: str = "") -> float:
    """Where a trace falls in [0, 1) for sampling: the same every time."""
    digest = hashlib.blake2b(f"{salt}{trace_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def is_sampled(trace_id: str, rate: float, salt: str = "") -> bool:
    """Whether a trace is in a sample of ``rate``; a trace in at 10 % is also in at 20 %."""
    if rate >= 1:
        return True
    return rate > 0 and sample_point(trace_id, salt) < rate


def rule_salt(rule_id: int) -> str:
    # Each rule samples its own traces: two 50 % rules do not score the same half.
    return f"rule:{rule_id}:"


def percent(rate: float) -> str:
    """0.1 -> "10 %"."""
    return f"{round(rate * 100, 2):g} %"


# ---------------------------------------------------------------------------
# Rules


def _check_scorers(scorer_ids: Any) -> list[str]:
    if isinstance(scorer_ids, str):
        scorer_ids = [scorer_ids]
    if not isinstance(scorer_ids, list | tuple) or not scorer_ids:
        raise RuleError("scorerIds must be a non-empty list of scorer ids.")
    if len(scorer_ids) > MAX_RULE_SCORERS:
        raise RuleError(f"A rule takes at most {MAX_RULE_SCORERS} scorers.")
    ids: dict[str, None] = {}
    for scorer_id in scorer_ids:
        if not isinstance(scorer_id, str):
            raise RuleError("scorerIds must be a list of scorer ids (text).")
        try:
            registry.get(scorer_id)
        except (registry.UnknownScorer, TypeError):
            raise RuleError(f"No scorer with id {scorer_id!r}.", status_code=404) from None
        ids.setdefault(scorer_id, None)
    return list(ids)


def _check_target(target: Any) -> str:
    if target in (None, ""):
        return TRACE_TARGET
    if target != TRACE_TARGET and target not in SpanType.values:
        raise RuleError(
            f"target must be 'trace' or a span type ({', '.join(SpanType.values)}); got {target!r}."
        )
    return target


def _check_rate(rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise RuleError("sampleRate must be a number from 0 to 1.")
    if not 0 <= rate <= 1:
        raise RuleError(f"sampleRate must be from 0 to 1 (0.1 is 10 %); got {rate}.")
    return float(rate)


def _check_cost(cost: Any) -> float | None:
    if cost is None:
        return None
    if isinstance(cost, bool) or not isinstance(cost, int | float) or not math.isfinite(cost):
        raise RuleError("maxCostUsd must be a number of US dollars, or null.")
    if cost < 0 or cost > 1e9:
        raise RuleError("maxCostUsd must be from 0 to 1,000,000,000 US dollars.")
    return float(cost)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise RuleError("name must be non-empty text.")
    if len(name) > 200 or "\x00" in name:
        raise RuleError("name takes at most 200 characters, without NUL.")
    return name.strip()


def _check_flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise RuleError(f"{key} must be true or false.")
    return value


def _user(created_by):
    return created_by if getattr(created_by, "is_authenticated", False) else None


def _snapshot(rule: ScoringRule) -> None:
    ScoringRuleVersion.objects.create(
        rule=rule,
        version=rule.version,
        scorer_ids=rule.scorer_ids,
        filter=rule.filter,
        target=rule.target,
        sample_rate=rule.sample_rate,
    )


@transaction.atomic
def create_rule(
    *,
    name: str,
    scorer_ids: list[str],
    filter: dict | None = None,  # noqa: A002 - the rule's field name
    target: str = TRACE_TARGET,
    sample_rate: float = 1.0,
    live: bool = True,
    active: bool = True,
    max_cost_usd: float | None = None,
    created_by=None,
) -> ScoringRule:
    """Create a rule (version 1). New traces are matched against it from now on if it is
    live and active; existing ones only by a backfill."""
    rule = ScoringRule.objects.create(
        name=_check_name(name),
        scorer_ids=_check_scorers(scorer_ids),
        filter=clean_filter(filter),
        target=_check_target(target),
        sample_rate=_check_rate(sample_rate),
        live=_check_flag(live, "live"),
        active=_check_flag(active, "active"),
        max_cost_usd=_check_cost(max_cost_usd),
        version=1,
        created_by=_user(created_by),
    )
    _snapshot(rule)
    transaction.on_commit(forget_live_rules)
    return rule


CHECKS = {
    "name": _check_name,
    "scorer_ids": _check_scorers,
    "filter": clean_filter,
    "target": _check_target,
    "sample_rate": _check_rate,
    "live": lambda v: _check_flag(v, "live"),
    "active": lambda v: _check_flag(v, "active"),
    "max_cost_usd": _check_cost,
}


@transaction.atomic
def update_rule(rule: ScoringRule, *, created_by=None, **changes) -> ScoringRule:
    """Change a rule; new scorers, filter, target or sample rate make a new version.

    Outcomes already recorded stay (a trace is matched once per rule); Scores
    and outcomes keep the version they ran under.
    """
    unknown = sorted(set(changes) - set(CHECKS))
    if unknown:
        raise RuleError(f"Unknown rule field(s): {', '.join(unknown)}.")
    rule = ScoringRule.objects.select_for_update().get(pk=rule.pk)
    versioned = False
    for key, value in changes.items():
        cleaned = CHECKS[key](value)
        if getattr(rule, key) != cleaned:
            versioned |= key in VERSIONED_FIELDS
            setattr(rule, key, cleaned)
    if versioned:
        rule.version += 1
    rule.save()
    if versioned:
        _snapshot(rule)
    transaction.on_commit(forget_live_rules)
    return rule


@transaction.atomic
def delete_rule(rule: ScoringRule) -> None:
    """Delete a rule with its versions and outcomes; its Scores and batches stay."""
    RuleOutcome.objects.filter(rule=rule).delete()
    rule.delete()
    transaction.on_commit(forget_live_rules)


def rule_stats(rule: ScoringRule) -> dict[str, int]:
    """Outcome counts of a rule: considered, scored, sampled_out, skipped, failed, pending."""
    return rule_stats_many([rule.pk]).get(rule.pk, dict(EMPTY_STATS))


EMPTY_STATS = dict.fromkeys(
    ("considered", "scored", "sampled_out", "skipped", "failed", "pending"), 0
)


def rule_stats_many(rule_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """``rule_stats`` of several rules in one query (for lists)."""
    rows = (
        RuleOutcome.objects.filter(rule_id__in=list(rule_ids))
        .order_by()
        .values("rule_id")
        .annotate(
            considered=Count("id"),
            **{
                kind: Count("id", filter=Q(outcome=kind))
                for kind in ("scored", "sampled_out", "skipped", "failed", "pending")
            },
        )
    )
    return {row.pop("rule_id"): row for row in rows}


# ---------------------------------------------------------------------------
# Considering traces: the shared core of live scoring and fan-outs


def _scorer_objects(scorer_ids: list[str]) -> list[Scorer]:
    found = []
    for scorer_id in scorer_ids:
        try:
            found.append(registry.get(scorer_id))
        except registry.UnknownScorer:
            log.warning("Scorer %r of a rule or batch is not registered any more", scorer_id)
    return found


def _new_batch(
    *,
    scorer_ids: list[str],
    target: str,
    rule: ScoringRule | None = None,
    rule_filter: dict | None = None,
    sample_rate: float = 1.0,
    max_cost_usd: float | None = None,
    created_by=None,
    fanning_out: bool = False,
) -> ScoringBatch:
    scorers = _scorer_objects(scorer_ids)
    names = ", ".join(s.name for s in scorers) or ", ".join(scorer_ids)
    return ScoringBatch.objects.create(
        scorer_id=scorer_ids[0],
        scorer_name=names[:1000],
        scorer_ids=list(scorer_ids),
        scope_type=ScopeType.TRACE if target == TRACE_TARGET else ScopeType.SPAN,
        span_type="" if target == TRACE_TARGET else target,
        rule=rule,
        filter=rule_filter or {},
        sample_rate=sample_rate,
        max_cost_usd=max_cost_usd,
        created_by=_user(created_by),
        fanning_out=fanning_out,
    )


def _has_io(prefix: str = "") -> Q:
    return Q(**{f"{prefix}input__isnull": False}) | Q(**{f"{prefix}output__isnull": False})


def _targets(trace_ids: list[str], target: str) -> tuple[dict[str, list[int] | None], dict]:
    """(traces to score -> span pks (None: trace scope), traces to skip -> reason)."""
    ok: dict[str, list[int] | None] = {}
    skipped: dict[str, str] = {}
    if target == TRACE_TARGET:
        root = Span.objects.filter(trace_id=OuterRef("trace_id"), span_id=OuterRef("root_span_id"))
        rows = (
            Trace.objects.filter(trace_id__in=trace_ids)
            .annotate(io=Exists(root.filter(_has_io())))
            .values_list("trace_id", "has_root", "io")
        )
        for trace_id, has_root, io in rows:
            if not has_root:
                skipped[trace_id] = "The trace has no root span."
            elif not io:
                skipped[trace_id] = "The root span has no input or output."
            else:
                ok[trace_id] = None
        return ok, skipped
    label = SpanType(target).label.lower()
    spans: dict[str, list[int]] = defaultdict(list)
    without_io: set[str] = set()
    rows = (
        Span.objects.filter(trace_id__in=trace_ids, span_type=target)
        .annotate(io=Q(input__isnull=False) | Q(output__isnull=False))
        .order_by("trace_id", "started_at", "span_id")
        .values_list("trace_id", "pk", "io")
    )
    for trace_id, pk, io in rows:
        if io:
            spans[trace_id].append(pk)
        else:
            without_io.add(trace_id)
    for trace_id in trace_ids:
        if spans.get(trace_id):
            ok[trace_id] = spans[trace_id]
        elif trace_id in without_io:
            skipped[trace_id] = f"Its {label} spans have no input or output."
        else:
            skipped[trace_id] = f"The trace has no {label} span."
    return ok, skipped


def _consider(
    *,
    batch: ScoringBatch,
    trace_ids: list[str],
    scorer_ids: list[str],
    target: str,
    sample_rate: float,
    salt: str,
    rule: ScoringRule | None,
    now: datetime,
) -> dict[str, Any]:
    """Sample these traces, create the pending Scores of those kept, and (for a rule)
    one outcome per trace; returns counts and the new Scores' ids. Called in a transaction."""
    kept = [t for t in trace_ids if is_sampled(t, sample_rate, salt)]
    kept_set = set(kept)
    ok, skipped = _targets(kept, target) if kept else ({}, {})
    scorers = _scorer_objects(scorer_ids)
    created = 0
    rule_kwargs = {}
    if rule is not None:
        rule_kwargs = {"source": ScoreSource.RULE, "rule_id": rule.pk, "rule_version": rule.version}
    inapplicable = 0
    ok_ids = list(ok)
    for scorer in scorers:
        if not ok_ids:
            break
        if target == TRACE_TARGET:
            for start in range(0, len(ok_ids), services.CHUNK):
                created += services._insert_pending_scores(
                    batch=batch,
                    scorer=scorer,
                    trace_ids=ok_ids[start : start + services.CHUNK],
                    now=now,
                    **rule_kwargs,
                )
        else:
            pks = [pk for t in ok_ids for pk in ok[t] or ()]
            for start in range(0, len(pks), services.CHUNK):
                created += services._insert_pending_scores(
                    batch=batch,
                    scorer=scorer,
                    span_pks=pks[start : start + services.CHUNK],
                    now=now,
                    **rule_kwargs,
                )
            reason = scorer.skip_reason(target)
            if reason:
                inapplicable += Score.objects.filter(
                    batch=batch, scorer_id=scorer.id, trace_id__in=ok_ids
                ).update(status=ScoreStatus.SKIPPED, reason=reason, finished_at=now)
    # One read of the new Scores: what to queue, and each trace's first Score for its outcome.
    score_ids: list[int] = []
    first_score: dict[str, int] = {}
    if ok_ids:
        for pk, trace_id, status in (
            Score.objects.filter(batch=batch, trace_id__in=ok_ids)
            .order_by("pk")
            .values_list("pk", "trace_id", "status")
        ):
            first_score.setdefault(trace_id, pk)
            if status == ScoreStatus.PENDING:
                score_ids.append(pk)
    if rule is not None:
        outcomes = []
        for trace_id in trace_ids:
            if trace_id not in kept_set:
                kind, reason = RuleOutcomeKind.SAMPLED_OUT, f"sampled out at {percent(sample_rate)}"
            elif trace_id in skipped:
                kind, reason = RuleOutcomeKind.SKIPPED, skipped[trace_id]
            else:
                kind, reason = RuleOutcomeKind.PENDING, ""
            outcomes.append(
                RuleOutcome(
                    rule=rule,
                    rule_version=rule.version,
                    trace_id=trace_id,
                    outcome=kind,
                    reason=reason,
                    batch=batch if kind == RuleOutcomeKind.PENDING else None,
                    score_id=first_score.get(trace_id),
                )
            )
        RuleOutcome.objects.bulk_create(outcomes, batch_size=1000, ignore_conflicts=True)
        if inapplicable:
            settle_outcomes(batch_id=batch.pk, trace_ids=ok_ids)
    return {
        "considered": len(trace_ids),
        "traces": len(ok_ids),
        "scores": created,
        "score_ids": score_ids,
        "sampled_out": len(trace_ids) - len(kept),
        "skipped": len(skipped),
    }


def _queue_scores(batch_id, score_ids: list[int]) -> None:
    """Queue Scores through the services' queueing; a broker outage leaves them for the
    per-minute sweep, which queues pending Scores again once they are stale."""
    if not score_ids:
        return
    try:
        for start in range(0, len(score_ids), services.CHUNK):
            services.enqueue_scores(
                batch_id=batch_id, score_ids=score_ids[start : start + services.CHUNK]
            )
    except services.BROKER_ERRORS as error:
        log.warning("Could not queue the Scores of batch %s: %s", batch_id, error)


# ---------------------------------------------------------------------------
# Outcomes follow their Scores


def _outcome_of(rows: list[tuple]) -> tuple[str, str, int | None]:
    """(outcome, reason, score id) of one trace from its Scores' (pk, status, reason, error,
    scorer_id)."""
    statuses = {status for _, status, *_ in rows}
    if ScoreStatus.PENDING in statuses:
        return RuleOutcomeKind.PENDING, "", rows[0][0]
    for pk, status, _, error, scorer_id in rows:
        if status == ScoreStatus.FAILED:
            return RuleOutcomeKind.FAILED, f"{scorer_id}: {error}"[:2000], pk
    for pk, status, *_ in rows:
        if status == ScoreStatus.SUCCEEDED:
            return RuleOutcomeKind.SCORED, "", pk
    pk, _, reason, _, scorer_id = rows[0]
    return RuleOutcomeKind.SKIPPED, f"{scorer_id}: {reason}"[:2000], pk


def settle_outcomes(*, batch_id, trace_ids: list[str] | None = None) -> int:
    """Bring the outcomes of a batch's traces in line with their Scores; returns how many changed.

    Pending while a Score is pending; then failed if one failed, scored if one
    succeeded, else skipped (with the scorer's reason).
    """
    scores = Score.objects.filter(batch_id=batch_id, rule__isnull=False)
    outcomes = RuleOutcome.objects.filter(batch_id=batch_id)
    if trace_ids is not None:
        scores = scores.filter(trace_id__in=trace_ids)
        outcomes = outcomes.filter(trace_id__in=trace_ids)
    by_trace: dict[str, list[tuple]] = defaultdict(list)
    for trace_id, *row in scores.order_by("trace_id", "pk").values_list(
        "trace_id", "pk", "status", "reason", "error", "scorer_id"
    ):
        by_trace[trace_id].append(tuple(row))
    changed = []
    for outcome in outcomes.exclude(outcome=RuleOutcomeKind.SAMPLED_OUT):
        rows = by_trace.get(outcome.trace_id)
        if not rows:
            continue
        kind, reason, score_id = _outcome_of(rows)
        if (outcome.outcome, outcome.reason, outcome.score_id) != (kind, reason, score_id):
            outcome.outcome, outcome.reason, outcome.score_id = kind, reason, score_id
            outcome.updated_at = timezone.now()
            changed.append(outcome)
    RuleOutcome.objects.bulk_update(
        changed, ["outcome", "reason", "score", "updated_at"], batch_size=1000
    )
    return len(changed)


# ---------------------------------------------------------------------------
# Live scoring: the ingest listener and the sweeper


_live_rules = {"until": 0.0, "any": False}


def forget_live_rules() -> None:
    """Make the next ingest read again whether a live rule is active."""
    _live_rules["until"] = 0.0


def any_live_rule() -> bool:
    """Whether an active live rule exists; read at most once per ``LIVE_RULE_CACHE_SECONDS``."""
    now = time.monotonic()
    if now >= _live_rules["until"]:
        _live_rules["any"] = ScoringRule.objects.filter(active=True, live=True).exists()
        _live_rules["until"] = now + LIVE_RULE_CACHE_SECONDS
    return _live_rules["any"]


def settle_window() -> timedelta:
    return timedelta(seconds=settings.TRACESCORE_LIVE_SETTLE_SECONDS)


def note_ingested_traces(trace_ids: list[str]) -> None:
    """The ingest listener: make the traces that got spans (and have a root) live candidates.

    At most three queries per export: whether a live rule is active (cached
    briefly), one upsert of candidates, and the sweeper wake-up.
    """
    if not trace_ids or not any_live_rule():
        return
    due = timezone.now() + settle_window()
    qn = connection.ops.quote_name
    due_param = LiveCandidate._meta.get_field("due_at").get_db_prep_value(due, connection)
    noted = 0
    with connection.cursor() as cursor:
        for start in range(0, len(trace_ids), 500):
            chunk = trace_ids[start : start + 500]
            cursor.execute(
                f"INSERT INTO {qn(LiveCandidate._meta.db_table)} (trace_id, due_at) "
                f"SELECT trace_id, %s FROM {qn(Trace._meta.db_table)} "
                f"WHERE trace_id IN ({', '.join(['%s'] * len(chunk))}) AND has_root = %s "
                "ON CONFLICT (trace_id) DO UPDATE SET due_at = excluded.due_at",
                [due_param, *chunk, True],
            )
            noted += max(cursor.rowcount, 0)
    if noted:
        wake_sweeper()


def wake_sweeper() -> bool:
    """Queue a sweeper unless one holds the lease or was queued moments ago (one query)."""
    now = timezone.now()
    table = connection.ops.quote_name(LiveSweeper._meta.db_table)
    prep = LiveSweeper._meta.get_field("woken_at").get_db_prep_value
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, holder, woken_at) VALUES (%s, '', %s) "
            "ON CONFLICT (id) DO UPDATE SET woken_at = excluded.woken_at "
            f"WHERE ({table}.lease_expires_at IS NULL OR {table}.lease_expires_at < %s) "
            f"AND ({table}.woken_at IS NULL OR {table}.woken_at < %s) RETURNING id",
            [
                SWEEPER_ROW,
                prep(now, connection),
                prep(now, connection),
                prep(now - WAKE_GRACE, connection),
            ],
        )
        woken = cursor.fetchone() is not None
    if woken:
        try:
            async_task(SWEEP_TASK, save=False)
        except services.BROKER_ERRORS as error:
            log.warning("Could not queue the live sweeper: %s", error)
            LiveSweeper.objects.filter(pk=SWEEPER_ROW).update(woken_at=None)
            return False
    return woken


def wake_sweeper_if_due() -> bool:
    """The safety net (every minute): wake a sweeper when candidates are due and waiting."""
    if LiveCandidate.objects.filter(due_at__lte=timezone.now()).exists():
        return wake_sweeper()
    return False


def _acquire_sweeper(token: str) -> bool:
    now = timezone.now()
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | Q(holder=token)
    fields = {"holder": token, "lease_expires_at": now + SWEEPER_LEASE, "woken_at": None}
    if LiveSweeper.objects.filter(pk=SWEEPER_ROW).filter(free).update(**fields):
        return True
    _, created = LiveSweeper.objects.get_or_create(pk=SWEEPER_ROW, defaults=fields)
    return created


def _release_sweeper(token: str) -> None:
    LiveSweeper.objects.filter(pk=SWEEPER_ROW, holder=token).update(
        holder="", lease_expires_at=None
    )


def _take_due(now: datetime, limit: int) -> list[str]:
    """Delete and return up to ``limit`` due candidates. A span arriving meanwhile moves its
    candidate's due time, so the re-checked ``due_at`` keeps that trace for later."""
    table = connection.ops.quote_name(LiveCandidate._meta.db_table)
    when = LiveCandidate._meta.get_field("due_at").get_db_prep_value(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE trace_id IN (SELECT trace_id FROM {table} "
            "WHERE due_at <= %s ORDER BY due_at LIMIT %s) AND due_at <= %s RETURNING trace_id",
            [when, limit, when],
        )
        return [row[0] for row in cursor.fetchall()]


def live_rules() -> list[ScoringRule]:
    return list(ScoringRule.objects.filter(active=True, live=True).order_by("pk"))


def sweep_live_candidates(*, now: datetime | None = None, limit: int = LIVE_CHUNK) -> int:
    """One pass: take the due candidates, match every active live rule against those that
    are finished, write outcomes and Scores, and queue the Scores. Returns traces taken."""
    now = now or timezone.now()
    queued: list[tuple[Any, list[int]]] = []
    with transaction.atomic():
        taken = _take_due(now, limit)
        if not taken:
            return 0
        root_ended = Span.objects.filter(
            trace_id=OuterRef("trace_id"),
            span_id=OuterRef("root_span_id"),
            ended_at__isnull=False,
        )
        finished = list(
            Trace.objects.filter(trace_id__in=taken, has_root=True)
            .filter(Exists(root_ended))
            .values_list("trace_id", flat=True)
        )
        for rule in live_rules() if finished else []:
            considered = RuleOutcome.objects.filter(rule=rule, trace_id=OuterRef("trace_id"))
            matching = list(
                matching_traces(rule.filter)
                .filter(trace_id__in=finished)
                .exclude(Exists(considered))
                .order_by("trace_id")
                .values_list("trace_id", flat=True)
            )
            if not matching:
                continue
            batch = _new_batch(
                scorer_ids=rule.scorer_ids,
                target=rule.target,
                rule=rule,
                rule_filter=rule.filter,
                sample_rate=rule.sample_rate,
                max_cost_usd=rule.max_cost_usd,
            )
            counts = _consider(
                batch=batch,
                trace_ids=matching,
                scorer_ids=rule.scorer_ids,
                target=rule.target,
                sample_rate=rule.sample_rate,
                salt=rule_salt(rule.pk),
                rule=rule,
                now=now,
            )
            ScoringBatch.objects.filter(pk=batch.pk).update(
                trace_ids=[
                    t for t in matching if is_sampled(t, rule.sample_rate, rule_salt(rule.pk))
                ],
                trace_count=counts["traces"],
                score_count=counts["scores"],
            )
            queued.append((batch.pk, counts["score_ids"]))
    for batch_id, score_ids in queued:
        if score_ids:
            _queue_scores(batch_id, score_ids)
        else:
            services.finish_batch_if_done(batch_id=batch_id)
    return len(taken)


def run_live_sweeper(*, lifetime: float | None = None) -> str:
    """The sweeper task: hold the lease, sweep due candidates until none are left (sleeping
    until the next due time), for at most ``lifetime`` seconds; then hand over."""
    lifetime = settings.TRACESCORE_LIVE_SWEEPER_SECONDS if lifetime is None else lifetime
    token = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    if not _acquire_sweeper(token):
        return "another sweeper runs"
    deadline = time.monotonic() + lifetime
    swept = 0
    try:
        while True:
            swept += sweep_live_candidates()
            next_due = LiveCandidate.objects.aggregate(due=Min("due_at"))["due"]
            if next_due is None:
                # Release, then look again: a candidate added before the release is
                # seen here; one added after it wakes a new sweeper.
                _release_sweeper(token)
                if not LiveCandidate.objects.exists() or not _acquire_sweeper(token):
                    return f"swept {swept} traces"
                continue
            wait = max((next_due - timezone.now()).total_seconds(), MIN_SWEEP_PAUSE)
            if lifetime <= 0:  # one pass (tasks run in-process): the next export wakes one
                return f"swept {swept} traces"
            if time.monotonic() + wait > deadline:
                _release_sweeper(token)
                wake_sweeper()
                return f"swept {swept} traces; handed over"
            LiveSweeper.objects.filter(pk=SWEEPER_ROW, holder=token).update(
                lease_expires_at=timezone.now() + SWEEPER_LEASE + timedelta(seconds=wait)
            )
            time.sleep(wait)
    finally:
        _release_sweeper(token)


# ---------------------------------------------------------------------------
# Backfills and filter-wide batches


def _check_limit(limit: Any) -> int:
    if limit is None:
        return MAX_FILTER_TRACES
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_FILTER_TRACES:
        raise RuleError(f"limit must be a whole number from 1 to {MAX_FILTER_TRACES:,}.")
    return limit


def _check_time(value: Any, key: str, *, before: bool = False) -> str | None:
    """An ISO datetime (or a datetime) as ISO text; a date alone means, as on the trace list,
    from the start of that day (``started_after``) or to its end (``before``)."""
    if value in (None, ""):
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        parsed = datetime.combine(value + timedelta(days=1) if before else value, dt_time.min)
    elif isinstance(value, datetime):
        parsed = value
    else:
        text = value.strip() if isinstance(value, str) else ""
        try:
            parsed = parse_datetime(text) if "T" in text or " " in text else None
            day = parse_date(text) if parsed is None and text else None
        except ValueError:
            parsed = day = None
        if day is not None:
            parsed = datetime.combine(day + timedelta(days=1) if before else day, dt_time.min)
        if parsed is None:
            raise RuleError(
                f"{key} must be an ISO 8601 date (2026-11-20) or datetime (2026-11-20T14:30:00Z)."
            )
    if not 1900 <= parsed.year <= 9000:
        raise RuleError(f"{key} must be in the years 1900 to 9000.")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed.isoformat()


def _start_fanout(batch: ScoringBatch) -> None:
    def queue():
        try:
            async_task(FANOUT_TASK, str(batch.pk), group=str(batch.pk), save=False)
        except services.BROKER_ERRORS as error:
            log.warning("Could not queue the fan-out of batch %s: %s", batch.pk, error)
            ScoringBatch.objects.filter(pk=batch.pk).delete()
            raise services.QueueUnavailableError(services.QUEUE_UNAVAILABLE) from error

    transaction.on_commit(queue)


@transaction.atomic
def start_backfill(
    *,
    rule: ScoringRule,
    started_after=None,
    started_before=None,
    limit: int | None = None,
    created_by=None,
) -> ScoringBatch:
    """Run a rule on existing traces (started in the range; newest first, up to ``limit``).

    Answers at once: the batch is created fanning out, and tasks add its Scores
    and the outcomes chunk by chunk. Traces the rule already considered are left out.
    """
    after = _check_time(started_after, "startedAfter")
    before = _check_time(started_before, "startedBefore", before=True)
    if after and before and after >= before:
        raise RuleError("startedAfter must be before startedBefore.")
    limit = _check_limit(limit)
    batch = _new_batch(
        scorer_ids=rule.scorer_ids,
        target=rule.target,
        rule=rule,
        rule_filter=rule.filter,
        sample_rate=rule.sample_rate,
        max_cost_usd=rule.max_cost_usd,
        created_by=created_by,
        fanning_out=True,
    )
    _save_fanout(batch, {"after": after, "before": before, "limit": limit, "considered": 0})
    _start_fanout(batch)
    return batch


@transaction.atomic
def start_filtered_batch(
    *,
    filter: dict,  # noqa: A002 - the trace filter
    scorer_ids: list[str],
    target: str = TRACE_TARGET,
    sample_rate: float = 1.0,
    max_cost_usd: float | None = None,
    limit: int | None = None,
    created_by=None,
    started_after=None,
    started_before=None,
) -> ScoringBatch:
    """Score every trace the filter matches ("Select all N matching" → score now), up to
    ``limit`` (at most 1,000,000), newest first. Answers at once; tasks fan out in chunks."""
    cleaned = clean_filter(filter)
    ids = _check_scorers(scorer_ids)
    for scorer in _scorer_objects(ids):
        available, why = scorer.availability()
        if not available:
            raise RuleError(f"Scorer {scorer.id!r} is unavailable: {why}")
    after = _check_time(started_after, "startedAfter")
    before = _check_time(started_before, "startedBefore", before=True)
    batch = _new_batch(
        scorer_ids=ids,
        target=_check_target(target),
        rule_filter=cleaned,
        sample_rate=_check_rate(sample_rate),
        max_cost_usd=_check_cost(max_cost_usd),
        created_by=created_by,
        fanning_out=True,
    )
    _save_fanout(
        batch, {"after": after, "before": before, "limit": _check_limit(limit), "considered": 0}
    )
    _start_fanout(batch)
    return batch


def _save_fanout(batch: ScoringBatch, state: dict) -> None:
    state["at"] = timezone.now().isoformat()
    batch.fanout = state
    ScoringBatch.objects.filter(pk=batch.pk).update(fanout=state)


def _fanout_traces(batch: ScoringBatch, state: dict) -> QuerySet:
    traces = matching_traces(batch.filter).filter(started_at__isnull=False)
    if state.get("after"):
        traces = traces.filter(started_at__gte=datetime.fromisoformat(state["after"]))
    if state.get("before"):
        traces = traces.filter(started_at__lt=datetime.fromisoformat(state["before"]))
    if batch.rule_id:
        considered = RuleOutcome.objects.filter(rule_id=batch.rule_id, trace_id=OuterRef("pk"))
        traces = traces.exclude(Exists(considered))
    cursor = state.get("cursor")
    if cursor:
        started = datetime.fromisoformat(cursor[0])
        traces = traces.filter(
            Q(started_at__lt=started) | Q(started_at=started, trace_id__lt=cursor[1])
        )
    return traces.order_by("-started_at", "-trace_id")


def fan_out_chunk(batch_id) -> bool:
    """Add one chunk of a fanning-out batch's Scores (and outcomes); True if more remain."""
    queued: list[int] = []
    with transaction.atomic():
        batch = (
            ScoringBatch.objects.select_for_update(of=("self",))
            .select_related("rule")
            .filter(pk=batch_id, fanning_out=True)
            .first()
        )
        if batch is None:
            return False
        state = dict(batch.fanout or {"limit": MAX_FILTER_TRACES, "considered": 0})
        take = min(FANOUT_CHUNK, state["limit"] - state["considered"])
        rows = (
            list(_fanout_traces(batch, state).values_list("started_at", "trace_id")[:take])
            if take > 0
            else []
        )
        now = timezone.now()
        rule = batch.rule
        counts = (
            _consider(
                batch=batch,
                trace_ids=[t for _, t in rows],
                scorer_ids=batch.all_scorer_ids,
                target=batch.span_type or TRACE_TARGET,
                sample_rate=batch.sample_rate,
                salt=rule_salt(rule.pk) if rule is not None else "",
                rule=rule,
                now=now,
            )
            if rows
            else {"traces": 0, "scores": 0, "score_ids": []}
        )
        state["considered"] += len(rows)
        if rows:
            state["cursor"] = [rows[-1][0].isoformat(), rows[-1][1]]
        state["at"] = timezone.now().isoformat()  # the fan-out is alive
        more = len(rows) == take and state["considered"] < state["limit"]
        ScoringBatch.objects.filter(pk=batch.pk).update(
            trace_count=F("trace_count") + counts["traces"],
            score_count=F("score_count") + counts["scores"],
            fanout=state,
            fanning_out=more,
        )
        queued = counts["score_ids"]
    _queue_scores(batch_id, queued)
    if not more:
        services.finish_batch_if_done(batch_id=batch_id)
    return more


def fan_out_batch(batch_id, *, seconds: float = FANOUT_TASK_SECONDS) -> str:
    """The fan-out task: chunks for up to ``seconds``, then the next task takes over."""
    deadline = time.monotonic() + seconds
    chunks = 0
    while fan_out_chunk(batch_id):
        chunks += 1
        if time.monotonic() > deadline:
            async_task(FANOUT_TASK, str(batch_id), group=str(batch_id), save=False)
            return f"{chunks} chunks; handed over"
    return f"{chunks + 1} chunks; done"


def resume_stalled_fanouts() -> int:
    """The safety net (every minute): queue again the fan-out of a batch whose fan-out
    made no progress for longer than a task may run (its task was lost or killed). A
    second task on a live fan-out is harmless: chunks lock the batch and read its cursor."""
    stalled_before = timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"] + 60)
    resumed = 0
    for batch_id, state in ScoringBatch.objects.filter(fanning_out=True).values_list(
        "pk", "fanout"
    ):
        at = parse_datetime((state or {}).get("at") or "")
        if at is None or at < stalled_before:
            try:
                async_task(FANOUT_TASK, str(batch_id), group=str(batch_id), save=False)
            except services.BROKER_ERRORS as error:
                log.warning("Could not resume the fan-out of batch %s: %s", batch_id, error)
                break
            resumed += 1
    return resumed


# ---------------------------------------------------------------------------
# Retry


@transaction.atomic
def retry_failed(*, batch: ScoringBatch | None = None, rule: ScoringRule | None = None) -> int:
    """Queue again exactly the failed Scores of a batch or a rule: the same rows, back to
    pending with the error cleared and their attempts kept (each new run counts one more);
    their batches unfinished again and their rule outcomes pending. Returns how many."""
    if batch is None and rule is None:
        raise RuleError("Give a batch or a rule whose failed scores to retry.")
    failed = Score.objects.filter(status=ScoreStatus.FAILED)
    if batch is not None:
        failed = failed.filter(batch=batch)
    if rule is not None:
        failed = failed.filter(rule=rule)
    rows = list(failed.values_list("pk", "batch_id"))
    if not rows:
        return 0
    RuleOutcome.objects.filter(
        outcome=RuleOutcomeKind.FAILED,
        batch_id__in={b for _, b in rows if b},
    ).filter(
        Exists(failed.filter(batch_id=OuterRef("batch_id"), trace_id=OuterRef("trace_id")))
    ).update(outcome=RuleOutcomeKind.PENDING, reason="", updated_at=timezone.now())
    now = timezone.now()
    by_batch: dict[Any, list[int]] = defaultdict(list)
    for pk, batch_id in rows:
        by_batch[batch_id].append(pk)
    for start in range(0, len(rows), services.CHUNK):
        Score.objects.filter(
            pk__in=[pk for pk, _ in rows[start : start + services.CHUNK]],
            status=ScoreStatus.FAILED,
        ).update(
            status=ScoreStatus.PENDING,
            score=None,
            error="",
            reason="",
            details={},
            finished_at=None,
            started_at=None,
            claimed_by="",
            lease_expires_at=None,
            duration_ms=None,
            queued_at=now,
        )
    ScoringBatch.objects.filter(pk__in=[b for b in by_batch if b]).update(finished_at=None)

    def queue():
        for batch_id, ids in by_batch.items():
            _queue_scores(batch_id, ids)

    transaction.on_commit(queue)
    return len(rows)


# ---------------------------------------------------------------------------
# Reading: what rules did with a trace, late spans


NO_LIVE_RULE = "Matched no live rule."


def _mismatch(rule_filter: dict, trace: Trace) -> str:
    """Why a trace does not match a filter, for a person ("" if the simple fields match)."""
    if "name" in rule_filter and rule_filter["name"].lower() not in (trace.name or "").lower():
        return f"the name does not contain {rule_filter['name']!r}"
    if "type" in rule_filter and trace.span_type != rule_filter["type"]:
        return f"the type is {trace.span_type}, not {rule_filter['type']}"
    if "status" in rule_filter and trace.status != rule_filter["status"]:
        return f"the status is {trace.status}, not {rule_filter['status']}"
    if "service" in rule_filter and trace.service_name != rule_filter["service"]:
        return f"the service is {trace.service_name or '(none)'}, not {rule_filter['service']}"
    duration = trace.duration_ms
    if "minDurationMs" in rule_filter and (
        duration is None or duration < rule_filter["minDurationMs"]
    ):
        return f"it lasted less than {rule_filter['minDurationMs']:g} ms"
    if "maxDurationMs" in rule_filter and (
        duration is None or duration > rule_filter["maxDurationMs"]
    ):
        return f"it lasted more than {rule_filter['maxDurationMs']:g} ms"
    if rule_filter.get("metadata"):
        pairs = ", ".join(f"{k}={v}" for k, v in rule_filter["metadata"].items())
        return f"its metadata does not have {pairs}"
    return ""


def _outcome_text(outcome: RuleOutcome) -> str:
    kind = outcome.outcome
    if kind == RuleOutcomeKind.SAMPLED_OUT:
        return outcome.reason or "sampled out"
    if kind == RuleOutcomeKind.SCORED:
        value = outcome.score.score if outcome.score is not None else None
        return "scored" if value is None else f"scored {value:.2f}"
    if kind == RuleOutcomeKind.SKIPPED:
        return f"skipped: {outcome.reason}" if outcome.reason else "skipped"
    if kind == RuleOutcomeKind.FAILED:
        return f"failed: {outcome.reason}" if outcome.reason else "failed"
    return "pending"


def rule_outcomes_for_trace(trace_id: str) -> list[dict]:
    """For each active rule and each rule with an outcome for this trace: what it did.

    Rows are {"rule", "outcome" (RuleOutcome or None), "matched" (bool), "text"}.
    ``matched_no_live_rule(rows)`` says whether the trace matched no live rule.
    """
    outcomes = {
        o.rule_id: o
        for o in RuleOutcome.objects.filter(trace_id=trace_id).select_related("score", "rule")
    }
    rules = list(ScoringRule.objects.filter(Q(active=True) | Q(pk__in=list(outcomes))))
    # The trace, with for each rule that has no outcome whether its filter matches,
    # and whether the trace waits to be finished: one query whatever the rules.
    checks = {
        f"matches_{rule.pk}": Exists(matching_traces(rule.filter).filter(pk=OuterRef("pk")))
        for rule in rules
        if rule.pk not in outcomes
    }
    trace = (
        Trace.objects.filter(trace_id=trace_id)
        .annotate(waiting=Exists(LiveCandidate.objects.filter(trace_id=OuterRef("pk"))), **checks)
        .first()
    )
    if trace is None:
        return []
    rows = []
    for rule in rules:
        outcome = outcomes.get(rule.pk)
        if outcome is not None:
            rows.append(
                {"rule": rule, "outcome": outcome, "matched": True, "text": _outcome_text(outcome)}
            )
            continue
        matched = getattr(trace, f"matches_{rule.pk}")
        if not matched:
            why = _mismatch(rule.filter, trace) or "the filter does not match"
            text = f"not matched: {why}"
        elif not rule.live:
            text = "matches; live scoring is off (run it on existing traces to score it)"
        elif trace.waiting or not trace.has_root:
            text = "matches; waiting for the trace to finish"
        else:
            text = "matches; not considered (the trace finished before the rule existed)"
        rows.append({"rule": rule, "outcome": None, "matched": matched, "text": text})
    return rows


def matched_no_live_rule(rows: list[dict]) -> bool:
    """True when none of ``rule_outcomes_for_trace``'s rows is a live rule that matched."""
    return not any(row["matched"] and row["rule"].live for row in rows)


def late_spans(score: Score) -> int:
    """Spans of the score's trace that arrived after the scorer read it (0 while pending)."""
    if score.status == ScoreStatus.PENDING:
        return 0
    read_at = score.started_at or score.finished_at or score.created_at
    return Span.objects.filter(trace_id=score.trace_id, received_at__gt=read_at).count()
