"""django-q2 entry points: look things up by id and call a service.

``score_chunk`` takes a chunk of Score ids (``TRACESCORE_SCORE_CHUNK`` of one
batch, queued by ``services.enqueue_scores``): it claims them with one UPDATE
(``services.claim_scores``; Scores finished or held by another run are left
out), reads every input with two queries, runs the scorers, and records the
outcomes with a few statements (``services.record_scores``). The task's own
thread does all the database work; the scorers run in threads of their own
and never touch the database.

Code scorers run one after another. Judges (``kind == "llm"``) run side by
side, up to ``TRACESCORE_JUDGE_CONCURRENCY`` at once, and are recorded as
they finish (every quarter second, in groups), so a slow judge does not hold
back the others' results.

Each scorer run has its own time limit (``TRACESCORE_SCORER_TIMEOUT``, below
the django-q2 task timeout) counted from its start, so a hanging scorer becomes
a failed Score with a message instead of a killed worker. A Python thread
cannot be stopped from outside, so the limit is also handed to the scorer as a
deadline (``scoring.scorers.base.time_left``): the judges size every HTTP call
and retry to it and make no call past it. A code scorer stuck in a loop keeps
its thread until the worker process is recycled, but nothing it returns is
kept: only the claim's holder records, and the Score is already failed.

django-q2 kills a task that outlives its timeout, so a task starts no scorer
that could still run then: the Scores it did not start are handed back
unstarted (``services.release_scores``) and queued again.

A judge kept waiting by rate limits past its time limit (``ScorerThrottled``)
is not failed: its Score is handed back and queued again, and fails only once
it has been started ``TRACESCORE_TASK_MAX_ATTEMPTS`` times.

``score_trace(score_id)`` is the task name of one Score that older versions
queued; it runs a chunk of one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from scoring import costs, services
from scoring.choices import ScopeType
from scoring.inputs import build_scoring_inputs
from scoring.models import Score
from scoring.scorers import ScorerError, ScorerSkipped, registry
from scoring.scorers.base import DEADLINE, Scorer, ScoreResult, ScorerThrottled, ScoringInput

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


# Judge outcomes are stored in groups at most this often (seconds).
RECORD_EVERY = 0.25
# Seconds kept free before the django-q2 task timeout when deciding to start a scorer.
TASK_MARGIN = 5
# How long past a run's deadline the task waits for the scorer's own answer (a
# judge's message says more than "did not finish").
GRACE = 0.1


@dataclass
class Job:
    """One claimed Score on its way through a chunk run."""

    score: Score
    outcome: services.Outcome
    scorer: Scorer | None = None
    data: ScoringInput | None = None
    started: float = 0.0  # time.perf_counter()
    deadline: float = 0.0  # time.monotonic()
    runner: CodeRunner | None = None  # the thread running a code scorer

    @property
    def lane(self) -> str:
        return "llm" if self.scorer is not None and self.scorer.kind == "llm" else "code"


def _prepare(scores: list[Score]) -> tuple[list[Job], list[Job]]:
    """Jobs ready to run, and jobs already decided (unknown scorer, no input)."""
    targets = []
    for score in scores:
        span_scope = score.batch is not None and score.batch.scope_type == ScopeType.SPAN
        if span_scope:
            targets.append((score.trace_id, score.span_id, ScopeType.SPAN))
        else:  # the root, chosen now: it may have arrived after the batch started
            targets.append((score.trace_id, None, ScopeType.TRACE))
    inputs = build_scoring_inputs(targets)
    ready, decided = [], []
    for score, data in zip(scores, inputs, strict=True):
        job = Job(score=score, outcome=services.Outcome(span_id=score.span_id))
        try:
            job.scorer = registry.get(score.scorer_id)
        except registry.UnknownScorer as error:
            job.outcome.error = str(error)
            decided.append(job)
            continue
        if isinstance(data, ScorerError):
            job.outcome.error = str(data)
            job.outcome.details = dict(getattr(data, "details", None) or {})
            decided.append(job)
            continue
        job.data = data
        outcome = job.outcome
        outcome.span_id, outcome.input, outcome.output = data.span_id, data.input, data.output
        outcome.span_name, outcome.span_type = data.span_name, data.span_type
        ready.append(job)
    return ready, decided


def _finish(job: Job, value: Any, error: BaseException | None) -> None:
    """Turn what the scorer returned or raised into the job's outcome."""
    outcome, scorer = job.outcome, job.scorer
    try:
        if error is not None:
            raise error
        result = _check(value, scorer)
        outcome.score, outcome.reason = float(result.score), result.reason
        outcome.details = dict(result.details or {})
        if job.data.notes:
            outcome.details["notes"] = list(job.data.notes)
    except ScorerThrottled as throttled:
        outcome.error, outcome.requeue = str(throttled), True
        outcome.details = dict(throttled.details or {})
    except ScorerSkipped as skip:
        outcome.skipped, outcome.reason = True, str(skip)
    except (ScorerError, ScorerTimeout) as failure:
        outcome.error = str(failure)
        outcome.details = dict(getattr(failure, "details", None) or {})
    except Exception as crash:
        log.exception("Scorer %s failed on score %s", job.score.scorer_id, job.score.pk)
        outcome.error = f"The scorer crashed: {type(crash).__name__}: {crash}"
    outcome.duration_ms = (time.perf_counter() - job.started) * 1000


class CodeRunner:
    """The thread that runs a chunk's code scorers one after another.

    One thread for the lot rather than one per Score (starting a thread costs
    more than most code scorers). When a scorer overruns its time limit the
    task abandons this runner, which stops after that Score if it ever
    returns, and starts another for the Scores left.
    """

    def __init__(self, run: ChunkRun, jobs: deque[Job]):
        self.abandoned = False
        self.run, self.jobs = run, jobs
        threading.Thread(target=self.loop, name="code-scorers", daemon=True).start()

    def loop(self) -> None:
        run = self.run
        while not self.abandoned:
            if not run.code_may_start():
                return  # the task hands the rest back
            try:
                job = self.jobs.popleft()
            except IndexError:
                return
            job.runner = self
            job.started = time.perf_counter()
            job.deadline = time.monotonic() + run.timeout
            DEADLINE.set(job.deadline)
            run.running[job.score.pk] = job
            try:
                run.answers.put((job, job.scorer.score(job.data), None))
            except BaseException as error:  # handed to the task's thread
                run.answers.put((job, None, error))


class ChunkRun:
    """Run a claimed chunk's scorers and record each outcome once, as the claim holder."""

    def __init__(self, claim: str, scores: list[Score]):
        self.claim = claim
        self.scores = scores
        self.results: dict[int, str] = {}
        self.done: dict[int, services.Outcome] = {}
        self.answers: queue.Queue = queue.Queue()
        # Scores whose scorer runs now (judges put here by this thread, code
        # scorers by their runner), and code Scores not finished yet.
        self.running: dict[int, Job] = {}
        self.code_open: set[int] = set()
        self.code_jobs: deque[Job] = deque()
        self.timeout = settings.TRACESCORE_SCORER_TIMEOUT
        self.judge_limit = settings.TRACESCORE_JUDGE_CONCURRENCY
        # django-q2 kills a task past its timeout: no scorer starts that could
        # still run then (the first ones always start, so a chunk never stalls).
        task_timeout = settings.Q_CLUSTER.get("timeout") or 0
        self.start_by = time.monotonic() + task_timeout - self.timeout - TASK_MARGIN
        self.started_any = False
        self.code_started = self.code_stopped = False
        self.released: list[int] = []
        # Judges under a cost cap, by Score id, from their start until their cost is
        # recorded: the keys of their caps.
        self.capped: dict[int, tuple] = {}

    def run(self) -> dict[int, str]:
        ready, decided = _prepare(self.scores)
        for job in decided:
            self.done[job.score.pk] = job.outcome
        judges: deque[Job] = deque()
        for job in ready:
            if job.lane == "llm":
                judges.append(job)
            elif not self._stopped(job):  # asked here: the runner thread has no database
                self.code_jobs.append(job)
                self.code_open.add(job.score.pk)
        if self.code_jobs:
            self.started_any = True
            CodeRunner(self, self.code_jobs)
        last_record = time.monotonic()
        while judges or self.running or (self.code_open and not self._code_stopped()):
            while judges and self._judges_running() < self.judge_limit:
                if not self._may_start():
                    self.released += [job.score.pk for job in judges]
                    judges.clear()
                    break
                job = judges.popleft()
                admitted = self._admit(job)
                if admitted is None:  # its cost cap must see running judges' costs first
                    judges.appendleft(job)
                    break
                if admitted:
                    self._start_judge(job)
            self._collect()
            now = time.monotonic()
            if self.done and now - last_record >= RECORD_EVERY:
                self._record()
                last_record = now
        self._record()
        if self.released:
            services.release_scores(claim=self.claim, score_ids=self.released)
            for pk in self.released:
                self.results[pk] = "handed back"
        return self.results

    def code_may_start(self) -> bool:
        """For the code runner: False once the rest must be handed back (then the
        task's thread does so: the runner has no database)."""
        if time.monotonic() < self.start_by or not self.code_started:
            self.code_started = True
            return True
        self.code_stopped = True
        return False

    def _code_stopped(self) -> bool:
        """The code runner stopped early: what it left is handed back."""
        if not self.code_stopped or any(j.lane == "code" for j in list(self.running.values())):
            return False
        left = [job.score.pk for job in self.code_jobs]
        self.code_jobs.clear()
        self.released += left
        self.code_open.difference_update(left)
        return not self.code_open

    def _may_start(self) -> bool:
        """Whether a scorer started now would end before the task's timeout."""
        return not self.started_any or time.monotonic() < self.start_by

    def _stopped(self, job: Job) -> bool:
        """Ask the pre-run hook; a Score it stops is done, skipped with its reason."""
        reason = services.pre_run_skip_reason(job.score)
        if reason:
            job.outcome.skipped, job.outcome.reason = True, reason
            self.done[job.score.pk] = job.outcome
        return bool(reason)

    def _admit(self, job: Job) -> bool | None:
        """Whether a judge may start now (True), is skipped by a cost cap (False), or
        must wait (None) for the judges running under the same cap to record what
        they cost: a cap admits no more judges at once than the money left pays for
        at the cost its Scores had so far (``scoring.costs.CapBudget``)."""
        budgets = costs.cap_budgets(job.score)
        for budget in budgets:
            if budget.reached:
                job.outcome.skipped, job.outcome.reason = True, budget.reason()
                self.done[job.score.pk] = job.outcome
                return False
        for budget in budgets:
            running = sum(1 for key in self.capped.values() if budget.key in key)
            if not budget.admits(running):
                return None
        if budgets:
            self.capped[job.score.pk] = tuple(budget.key for budget in budgets)
        return True

    def _judges_running(self) -> int:
        return sum(1 for job in list(self.running.values()) if job.lane == "llm")

    def _start_judge(self, job: Job) -> None:
        self.started_any = True
        job.started = time.perf_counter()
        job.deadline = time.monotonic() + self.timeout
        answers = self.answers

        def target():
            DEADLINE.set(job.deadline)  # a new thread starts with an empty context
            try:
                answers.put((job, job.scorer.score(job.data), None))
            except BaseException as error:  # handed to the task's thread
                answers.put((job, None, error))

        self.running[job.score.pk] = job
        threading.Thread(target=target, name=f"scorer-{job.scorer.id}", daemon=True).start()

    def _settle(self, job: Job, value: Any, error: BaseException | None) -> None:
        del self.running[job.score.pk]
        self.code_open.discard(job.score.pk)
        _finish(job, value, error)
        self.done[job.score.pk] = job.outcome

    def _collect(self) -> None:
        """Wait for answers (until the next deadline or record time); time out late runs."""
        running = list(self.running.values())
        wait = RECORD_EVERY
        if running:
            first_deadline = min(job.deadline for job in running) + GRACE
            wait = max(0.0, min(first_deadline - time.monotonic(), RECORD_EVERY))
        try:
            answer = self.answers.get(timeout=wait)
            while True:
                job, value, error = answer
                if self.running.get(job.score.pk) is job:  # else: already timed out
                    self._settle(job, value, error)
                answer = self.answers.get_nowait()
        except queue.Empty:
            pass
        now = time.monotonic()
        for job in list(self.running.values()):
            if now >= job.deadline + GRACE:
                # Its thread runs on; nothing it returns is kept.
                late = ScorerTimeout(f"The scorer did not finish within {self.timeout:g} s.")
                self._settle(job, None, late)
                if job.runner is not None:
                    job.runner.abandoned = True
                    if self.code_jobs:
                        CodeRunner(self, self.code_jobs)

    def _record(self) -> None:
        if not self.done:
            return
        again = {pk: o for pk, o in self.done.items() if o.requeue}
        final = {pk: o for pk, o in self.done.items() if not o.requeue}
        recorded = services.record_scores(claim=self.claim, outcomes=final)
        requeued, failed = services.requeue_throttled_scores(claim=self.claim, outcomes=again)
        for pk, outcome in self.done.items():
            if pk in requeued:
                self.results[pk] = "requeued"
            elif pk in recorded or pk in failed:
                self.results[pk] = outcome.status
            else:
                self.results[pk] = "dropped"
            self.capped.pop(pk, None)
        self.done = {}


def run_chunk(score_ids: list[int]) -> dict[int, str] | None:
    """Claim and score ``score_ids``; what became of each claimed one, or None when
    none could be claimed (finished, gone, or held by another run)."""
    claim, scores = services.claim_scores(score_ids=list(score_ids))
    if not scores:
        return None
    return ChunkRun(claim, scores).run()


def score_chunk(score_ids: list[int] | int) -> str:
    """Score a chunk of pending Scores and record their outcomes."""
    if isinstance(score_ids, int):
        score_ids = [score_ids]
    results = run_chunk(score_ids)
    if results is None:
        return "skipped: finished, gone or held by another run"
    counts = Counter(results.values())
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))


def score_trace(score_id: int) -> str:
    """One Score (the task older versions queued): a chunk of one."""
    results = run_chunk([score_id])
    if results is None:
        return "skipped: finished, gone or held by another run"
    result = results.get(score_id, "dropped")
    if result == "dropped":
        return "dropped: the lease ran out and the score was handed on"
    if result == "requeued":
        return "requeued: throttled past its time limit"
    return result


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
