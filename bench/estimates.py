"""Judge batch estimates: how long ``"estimate": true`` takes for a selection.

Not a test. It creates a scratch PostgreSQL database, migrates it, stores demo
traces (``observability.demo``), then times ``POST /api/trace-scorers/batch``
with ``"estimate": true`` (Django test client, in process) for selections of
growing size with three judges, and prints the time, the tokens and how many
targets were counted (``sampled``). No judge is called: estimates count
prompts with tiktoken; the judge endpoint is configured only so the judges are
available.

    .venv/bin/python bench/estimates.py
    .venv/bin/python bench/estimates.py --traces 2000 --sizes 10,100,1000,2000

PostgreSQL: --database-url (default the server on 127.0.0.1 as postgres). The
scratch database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import sys
import time

from scratch import REPO, scratch_django

sys.path.insert(0, str(REPO))
JUDGES = ["answer-relevancy", "faithfulness", "hallucination"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--traces", type=int, default=1000)
    p.add_argument("--sizes", default="10,100,1000")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keep", action="store_true")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    with scratch_django(
        args.database_url,
        "ts_bench_estimates",
        keep=args.keep,
        TRACESCORE_JUDGE_BASE_URL="http://127.0.0.1:9/v1",  # never called
        TRACESCORE_JUDGE_MODEL="gpt-4o-mini",
    ):
        from django.conf import settings
        from django.contrib.auth.models import User
        from rest_framework.test import APIClient

        from observability.demo import store_demo_traces
        from observability.models import Trace

        store_demo_traces(args.traces, seed=7)
        trace_ids = list(Trace.objects.values_list("trace_id", flat=True)[: args.traces])
        client = APIClient()
        client.force_authenticate(User.objects.create_user("bench"))
        print(
            f"{len(JUDGES)} judges ({', '.join(JUDGES)}), model {settings.TRACESCORE_JUDGE_MODEL}, "
            f"exact up to {settings.TRACESCORE_ESTIMATE_EXACT_LIMIT} targets"
        )
        for size in (int(s) for s in args.sizes.split(",")):
            ids = trace_ids[:size]
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                answer = client.post(
                    "/api/trace-scorers/batch",
                    {"scorerIds": JUDGES, "traceIds": ids, "estimate": True},
                    format="json",
                )
                times.append(time.perf_counter() - t0)
                assert answer.status_code == 200, answer.content
            estimate = answer.json()["estimate"]
            print(
                f"{len(ids):>6} traces: best {min(times) * 1000:.0f} ms of {args.runs}, "
                f"{estimate['promptTokens']:,} prompt + {estimate['completionTokens']:,} "
                f"completion tokens, ${estimate['costUsd']}, sampled {estimate['sampled']}"
            )


if __name__ == "__main__":
    main()
