"""Batch scoring benchmark: throughput of the workers and latency of a small batch.

Not a test. It creates a scratch PostgreSQL database, migrates it, stores demo
traces through ``ingest_spans`` (``observability.demo``), starts one
``manage.py qcluster`` with 2 workers on the Redis broker (its own queue name),
then:

1. scores 2,000 traces with a fast code scorer in one batch, in tasks of
   ``--chunk`` Scores (TRACESCORE_SCORE_CHUNK, default 50), and prints
   traces/s from the POST to the last score stored, the time of the POST, and
   per trace: the mean time inside the scorer (measured by the task) and the
   mean time a worker held the Score (claim of its chunk to record);
2. 20 times: starts a 10-trace batch through the HTTP API (Django test client,
   in process) and times until all 10 scores are visible; prints p50/p95.

    .venv/bin/python bench/scoring.py
    .venv/bin/python bench/scoring.py --traces 4000 --workers 4 --runs 50
    .venv/bin/python bench/scoring.py --chunk 1   # one task per Score, as before chunks

PostgreSQL: --database-url (default the server on 127.0.0.1 as postgres);
Redis: --redis-url (default redis://127.0.0.1:6379/0). The scratch database is
dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid

from scratch import REPO, qcluster, scratch_django

sys.path.insert(0, str(REPO))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--traces", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--scorer", default="test-answer-length")
    p.add_argument("--chunk", type=int, default=50, help="TRACESCORE_SCORE_CHUNK")
    p.add_argument("--keep", action="store_true")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    with scratch_django(
        args.database_url,
        "ts_bench_scoring",
        keep=args.keep,
        REDIS_URL=args.redis_url,
        TRACESCORE_QUEUE_NAME=f"ts-bench-{uuid.uuid4().hex[:6]}",
        TRACESCORE_WORKERS=str(args.workers),
        TRACESCORE_SCORE_CHUNK=str(args.chunk),
        TRACESCORE_EXTRA_SCORERS="scoring.tests.worker_scorers",
    ) as env:
        from django.contrib.auth.models import User
        from django.db.models import Avg, DurationField, ExpressionWrapper, F, Max
        from rest_framework.test import APIClient

        from observability.demo import store_demo_traces
        from observability.models import Trace
        from scoring.choices import ScoreStatus
        from scoring.models import Score

        started = time.perf_counter()
        store_demo_traces(args.traces, seed=7)
        print(f"stored {args.traces} traces in {time.perf_counter() - started:.1f} s")
        trace_ids = list(Trace.objects.values_list("trace_id", flat=True)[: args.traces])

        client = APIClient()
        client.force_authenticate(User.objects.create_user("bench"))
        with qcluster(env):

            def run(ids: list[str]) -> tuple[float, float, str]:
                t0 = time.perf_counter()
                answer = client.post(
                    "/api/trace-scorers/batch",
                    {"scorerId": args.scorer, "traceIds": ids},
                    format="json",
                )
                post_s = time.perf_counter() - t0
                assert answer.status_code == 202, answer.content
                batch_id = answer.json()["batchId"]
                pending = Score.objects.filter(batch_id=batch_id, status=ScoreStatus.PENDING)
                while pending.exists():
                    time.sleep(0.02)
                return time.perf_counter() - t0, post_s, batch_id

            wall, post_s, batch_id = run(trace_ids)
            scores = Score.objects.filter(batch_id=batch_id)
            held = ExpressionWrapper(
                F("finished_at") - F("started_at"), output_field=DurationField()
            )
            stats = scores.aggregate(
                mean=Avg("duration_ms"), held=Avg(held), end=Max("finished_at")
            )
            failed = scores.filter(status=ScoreStatus.FAILED).count()
            print(
                f"{len(trace_ids)} traces scored in {wall:.2f} s: "
                f"{len(trace_ids) / wall:.0f} traces/s "
                f"with {args.workers} workers, chunks of {args.chunk} ({failed} failed); "
                f"POST answered in {post_s * 1000:.0f} ms"
            )
            print(
                f"per trace, mean: {stats['mean']:.2f} ms in the scorer, "
                f"{stats['held'].total_seconds() * 1000:.1f} ms from the claim of its chunk to "
                f"its record (the rest of the wall clock is queueing: broker, fan-out, task "
                "start-up)"
            )
            print(
                "load average (1, 5, 15 min) at the end: "
                + ", ".join(f"{x:.2f}" for x in os.getloadavg())
                + f"; {os.cpu_count()} CPUs"
            )

            latencies = []
            for i in range(args.runs):
                ids = trace_ids[i * 10 : i * 10 + 10]
                latencies.append(run(ids)[0])
            latencies.sort()
            p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
            print(
                f"10-trace batch, POST to all scores visible over {args.runs} runs: "
                f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
            )


if __name__ == "__main__":
    main()
