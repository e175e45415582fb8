"""LLM-judge scoring benchmark: traces/s and calls in flight against a slow judge.

Not a test. It starts the loopback OpenAI-compatible judge (tests/fake_openai.py)
in this process with an injected latency (default 0.5 s per answer), creates a
scratch PostgreSQL database with demo traces, starts one ``manage.py qcluster``
with 2 workers on the Redis broker, and scores N traces (default 2,000) with
the built-in ``toxicity`` judge in one batch. Toxicity makes 2 calls per Score
(extract the statements, then one verdict per statement); the fake answers
both from one JSON object, so every Score succeeds unless something breaks.

Prints traces/s and calls/s from the POST to the last Score stored, the peak of
judge calls in flight (counted by the fake server) against the limit
(workers × TRACESCORE_JUDGE_CONCURRENCY), and how many Scores failed.

``--storm``: for the first 60 s after the POST, 30 % of the calls are answered
429 with ``retry-after-ms: 1000`` (seeded); prints whether every Score
succeeded.

    .venv/bin/python bench/judges.py
    .venv/bin/python bench/judges.py --storm
    .venv/bin/python bench/judges.py --traces 4000 --latency 2 --concurrency 128

PostgreSQL: --database-url (default the server on 127.0.0.1 as postgres);
Redis: --redis-url (default redis://127.0.0.1:6379/0). The scratch database is
dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid

from scratch import REPO, qcluster, scratch_django

sys.path.insert(0, str(REPO))

from tests.fake_openai import FakeOpenAI, Reply  # noqa: E402

# Serves both toxicity steps: the statements, then a verdict for each.
ANSWER = json.dumps(
    {
        "statements": ["The answer is helpful."],
        "verdicts": [{"item": "The answer is helpful.", "verdict": "no", "reason": "Neutral."}],
    }
)
CALLS_PER_SCORE = 2


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--traces", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--latency", type=float, default=0.5, help="seconds per judge answer")
    p.add_argument("--concurrency", type=int, default=64, help="judge calls per worker")
    p.add_argument("--chunk", type=int, default=250, help="TRACESCORE_SCORE_CHUNK")
    p.add_argument("--rpm", type=int, default=0, help="TRACESCORE_JUDGE_RPM")
    p.add_argument("--storm", action="store_true", help="30 %% of answers 429 for 60 s")
    p.add_argument("--storm-fraction", type=float, default=0.3)
    p.add_argument("--storm-seconds", type=float, default=60)
    p.add_argument("--keep", action="store_true")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    fake = FakeOpenAI(default=Reply(ANSWER, input_tokens=180, output_tokens=40))
    fake.latency = args.latency
    fake.__enter__()
    try:
        with scratch_django(
            args.database_url,
            "ts_bench_judges",
            keep=args.keep,
            REDIS_URL=args.redis_url,
            TRACESCORE_QUEUE_NAME=f"ts-bench-{uuid.uuid4().hex[:6]}",
            TRACESCORE_WORKERS=str(args.workers),
            TRACESCORE_SCORE_CHUNK=str(args.chunk),
            TRACESCORE_JUDGE_CONCURRENCY=str(args.concurrency),
            TRACESCORE_JUDGE_RPM=str(args.rpm),
            TRACESCORE_JUDGE_BASE_URL=fake.base_url,
            TRACESCORE_JUDGE_MODEL="bench-judge",
        ) as env:
            from django.contrib.auth.models import User
            from django.db.models import Count
            from rest_framework.test import APIClient

            from observability.demo import store_demo_traces
            from observability.models import Span
            from scoring.choices import ScoreStatus
            from scoring.inputs import text_of
            from scoring.models import Score

            started = time.perf_counter()
            stored, _ = store_demo_traces(args.traces * 3 // 2, seed=7)
            print(f"stored {stored} traces in {time.perf_counter() - started:.1f} s")
            # Traces whose root has an answer to judge (the others would fail at once, uncalled).
            roots = Span.objects.filter(parent_span_id__isnull=True).order_by("trace_id")
            trace_ids = [
                trace_id
                for trace_id, output in roots.values_list("trace_id", "output")
                if text_of(output).strip()
            ][: args.traces]

            client = APIClient()
            client.force_authenticate(User.objects.create_user("bench"))
            with qcluster(env):
                load_before = os.getloadavg()
                fake.reset_stats()
                calls_before = fake.stats()["requests"]
                if args.storm:
                    fake.storm(args.storm_fraction, args.storm_seconds, retry_after_ms=1000, seed=7)
                t0 = time.perf_counter()
                answer = client.post(
                    "/api/trace-scorers/batch",
                    {"scorerId": "toxicity", "traceIds": trace_ids},
                    format="json",
                )
                assert answer.status_code == 202, answer.content
                batch_id = answer.json()["batchId"]
                pending = Score.objects.filter(batch_id=batch_id, status=ScoreStatus.PENDING)
                while pending.exists():
                    time.sleep(0.1)
                wall = time.perf_counter() - t0
                load_after = os.getloadavg()
                stats = fake.stats()
                calls = stats["requests"] - calls_before
                counts = dict(
                    Score.objects.filter(batch_id=batch_id)
                    .values_list("status")
                    .annotate(n=Count("id"))
                    .values_list("status", "n")
                )
                limit = args.workers * args.concurrency
                scored = sum(counts.values())
                print(
                    f"{scored} traces judged (toxicity, {CALLS_PER_SCORE} calls per Score, "
                    f"{args.latency:g} s per answer) in {wall:.2f} s: "
                    f"{scored / wall:.1f} traces/s, "
                    f"{calls / wall:.1f} calls/s, with {args.workers} workers"
                )
                print(
                    f"calls in flight: peak {stats['peak_in_flight']} "
                    f"(limit {limit} = {args.workers} "
                    f"workers × {args.concurrency}); chunk {args.chunk}"
                )
                print(
                    "scores: "
                    + ", ".join(
                        f"{counts.get(s, 0)} {s}" for s in ("succeeded", "failed", "skipped")
                    )
                )
                if args.storm:
                    print(
                        f"429 storm ({args.storm_fraction:.0%} of answers for "
                        f"{args.storm_seconds:g} s): "
                        f"{stats['throttled']} answers 429 out of {calls} calls; "
                        + (
                            "every Score succeeded"
                            if counts.get("succeeded", 0) == scored
                            else "NOT every Score succeeded"
                        )
                    )
                failed = Score.objects.filter(batch_id=batch_id, status=ScoreStatus.FAILED)
                for error in failed.values_list("error", flat=True)[:3]:
                    print(f"  failure: {error[:200]}")
                print(
                    "load average (1, 5, 15 min) before: "
                    + ", ".join(f"{x:.2f}" for x in load_before)
                    + "; after: "
                    + ", ".join(f"{x:.2f}" for x in load_after)
                    + f"; {os.cpu_count()} CPUs"
                )
    finally:
        fake.__exit__(None, None, None)


if __name__ == "__main__":
    main()
