"""Ingest benchmark: OTLP protobuf agent traces into tracescore on PostgreSQL.

Not a test. It creates a scratch PostgreSQL database, migrates it, creates an
ingest key, starts the production web server on it (``tracescore.server``:
gunicorn with uvicorn workers, as in the README), sends agent traces with the
shared load generator (``../shared/tools/otlp_load.py``, several concurrent
senders) and prints spans/s from the first request to the last span stored. In
the same run it decodes the very same export bodies on one core (decode rate),
and decodes them again and ``COPY``s the rows, on one connection, into a scratch
copy of the span table with the same indexes and unique constraint: a
single-connection reference for what one writer can do.

    .venv/bin/python bench/ingest.py                       # 2,000 traces, 3 workers
    .venv/bin/python bench/ingest.py --traces 4000 --workers 4 --concurrency 6
    .venv/bin/python bench/ingest.py --rules 5             # ingest with and without live rules

With ``--rules N`` the run also starts a ``qcluster`` (``--queue-workers``; Redis
when REDIS_URL is set), sends the traces once with no scoring rule, then (new
trace ids each time) with N active live rules (code scorers, matching every
trace) while the queue workers are stopped (the ingest listener's own cost),
and once more with them running (ingest and scoring sharing the cores), and
prints the ingest rates and their ratios to the first. Then it sends ``--paced-traces``
more traces a few at a time (one export every ``--paced-interval`` seconds) and
prints the median and p95 from a root span's arrival to its rule Scores being
finished (visible), for those and, once the queue drained, for the burst.

PostgreSQL is reached with --database-url (default: the server on 127.0.0.1 as
postgres); the scratch database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tracescore.server import WORKER_CLASS, gunicorn_command  # noqa: E402  (after the path is set)

DEFAULT_LOAD_TOOL = REPO.parent / "shared" / "tools" / "otlp_load.py"
PYTHON = sys.executable


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--traces", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=4, help="parallel senders")
    p.add_argument("--spans-per-request", type=int, default=100)
    p.add_argument("--workers", type=int, default=3, help="web server processes")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--load-tool", type=Path, default=DEFAULT_LOAD_TOOL)
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    p.add_argument("--rules", type=int, default=0, help="also measure with N live rules")
    p.add_argument("--queue-workers", type=int, default=2, help="qcluster workers (--rules)")
    p.add_argument("--paced-traces", type=int, default=40)
    p.add_argument("--paced-interval", type=float, default=0.5)
    p.add_argument("--drain-timeout", type=float, default=600)
    return p.parse_args()


RULE_SCORERS = ["latency", "error-free", "completeness", "tone-consistency", "json-validity"]


def create_rules(manage: list[str], env: dict, count: int) -> None:
    """N active live rules on every trace, each with one code scorer."""
    code = (
        "from scoring import rules\n"
        f"for i, scorer in enumerate({RULE_SCORERS!r} * 4):\n"
        f"    if i < {count}:\n"
        "        rules.create_rule(name=f'bench {i} {scorer}', scorer_ids=[scorer], filter={})\n"
    )
    subprocess.run([*manage, "shell", "-c", code], env=env, check=True)


def send_load(args, load_args: list[str], scratch_url: str) -> tuple[dict, int]:
    """Run the load generator; (its summary, spans stored meanwhile)."""
    with psycopg.connect(scratch_url) as conn:
        before = conn.execute("SELECT count(*) FROM observability_span").fetchone()[0]
    load = subprocess.run([PYTHON, str(args.load_tool), *load_args], capture_output=True, text=True)
    sys.stderr.write(load.stderr)
    summary = json.loads(load.stdout.strip().splitlines()[-1])
    with psycopg.connect(scratch_url) as conn:
        after = conn.execute("SELECT count(*) FROM observability_span").fetchone()[0]
    return summary, after - before


LATENCY = """
SELECT count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lag),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY lag),
       count(*) FILTER (WHERE early),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY made)
FROM (
SELECT extract(epoch FROM s.finished_at - r.received_at) AS lag,
       extract(epoch FROM s.created_at - r.received_at) AS made,
       s.created_at < r.received_at AS early
FROM scoring_score s
JOIN observability_trace t ON t.trace_id = s.trace_id
JOIN observability_span r ON r.trace_id = t.trace_id AND r.span_id = t.root_span_id
WHERE s.rule_id IS NOT NULL AND s.status <> 'pending' AND s.trace_id = ANY(%s)
) AS scored
"""


def latency(scratch_url: str, trace_ids: list[str]) -> str:
    with psycopg.connect(scratch_url) as conn:
        n, p50, p95, early, made = conn.execute(LATENCY, [trace_ids]).fetchone()
    if not n:
        return "no rule scores"
    return (
        f"median {p50:.2f} s, p95 {p95:.2f} s over {n} rule scores; p95 root -> Score "
        f"created {made:.2f} s ({early} made before the root arrived)"
    )


def wait_drained(scratch_url: str, timeout: float) -> float:
    """Seconds until no Score is pending (or the timeout)."""
    t0 = time.monotonic()
    with psycopg.connect(scratch_url, autocommit=True) as conn:
        while time.monotonic() - t0 < timeout:
            pending = conn.execute(
                "SELECT count(*) FROM scoring_score WHERE status = 'pending'"
            ).fetchone()[0]
            waiting = conn.execute("SELECT count(*) FROM scoring_livecandidate").fetchone()[0]
            if not pending and not waiting:
                break
            time.sleep(1)
    return time.monotonic() - t0


def send_paced(tool, load_args: list[str], interval: float) -> list[str]:
    """Send the bodies one at a time, ``interval`` seconds apart; the trace ids sent."""
    parsed = tool.parse_args(load_args)
    bodies, trace_ids = tool.build_requests(parsed)
    sender = tool.Sender(parsed)
    for body in bodies:
        started = time.monotonic()
        sender.post(body)
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return trace_ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_dbname(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def load_tool_module(path: Path):
    spec = importlib.util.spec_from_file_location("otlp_load", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer at {url}")


def decode_rate(bodies: list[tuple[int, bytes]]) -> tuple[float, int]:
    """Decode and map the bodies on one core: (spans/s, spans)."""
    from observability.otlp import PROTOBUF, decode_export

    t0 = time.perf_counter()
    spans = sum(len(decode_export(body, PROTOBUF).spans) for _, body in bodies)
    return spans / (time.perf_counter() - t0), spans


def copy_reference(bodies: list[tuple[int, bytes]], database_url: str) -> tuple[float, float, int]:
    """Decode the same bodies and COPY the rows, on one connection, into a copy of the span table.

    The copy has the span table's indexes and unique constraint (``LIKE …
    INCLUDING ALL``), not its foreign key. Returns (decode+COPY spans/s,
    COPY-only spans/s, rows).
    """
    from observability.otlp import PROTOBUF, decode_export

    columns = (
        "trace_id, span_id, parent_span_id, name, span_type, status, error_message, started_at, "
        "ended_at, duration_ms, input, output, attributes, resource, events, model, "
        "input_tokens, output_tokens, received_at"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_copy_spans")
        conn.execute("CREATE TABLE bench_copy_spans (LIKE observability_span INCLUDING ALL)")
        t0 = time.perf_counter()
        rows = []
        for _, body in bodies:
            for r in decode_export(body, PROTOBUF).spans:
                rows.append(
                    (
                        r.trace_id,
                        r.span_id,
                        r.parent_span_id,
                        r.name,
                        r.span_type,
                        r.status,
                        r.error_message,
                        r.started_at,
                        r.ended_at,
                        r.duration_ms,
                        json.dumps(r.input),
                        json.dumps(r.output),
                        json.dumps(r.attributes),
                        json.dumps(r.resource),
                        json.dumps(r.events),
                        r.model,
                        r.input_tokens,
                        r.output_tokens,
                        r.started_at,
                    )
                )
        t1 = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(f"COPY bench_copy_spans ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        t2 = time.perf_counter()
        conn.execute("DROP TABLE bench_copy_spans")
    return len(rows) / (t2 - t0), len(rows) / (t2 - t1), len(rows)


def main() -> int:
    args = parse_args()
    if not args.load_tool.exists():
        raise SystemExit(f"load generator not found: {args.load_tool} (see --load-tool)")
    scratch = f"ts_bench_ingest_{os.getpid()}"
    scratch_url = with_dbname(args.database_url, scratch)
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')
    env = {
        **os.environ,
        "DATABASE_URL": scratch_url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore::UserWarning",
        "TRACESCORE_QUEUE_NAME": scratch,
    }
    server = worker = None

    def measure_rules(args, load_args, manage, env, scratch_url, summary) -> str:
        """With no rule (the run above), then with N live rules; the report to print."""
        nonlocal worker
        # The run above warmed the server up (its first requests are slower); the
        # figure without rules is a second run, like the ones with rules after it.
        none_args = [*load_args]
        none_args[none_args.index("--seed") + 1] = str(args.seed + 4)
        unruled, stored_none = send_load(args, none_args, scratch_url)
        none_rate = stored_none / unruled["elapsed_s"]
        create_rules(manage, env, args.rules)
        time.sleep(2)  # the web processes re-read "any live rule?" at most every second
        # First with the queue workers stopped: what the ingest listener alone costs,
        # without the scoring's CPU on the same cores. Their traces are scored (and
        # the queue drained) before the next phase.
        os.killpg(worker.pid, signal.SIGSTOP)
        try:
            quiet_args = [*load_args]
            quiet_args[quiet_args.index("--seed") + 1] = str(args.seed + 3)
            quiet, stored_quiet = send_load(args, quiet_args, scratch_url)
        finally:
            os.killpg(worker.pid, signal.SIGCONT)
        quiet_rate = stored_quiet / quiet["elapsed_s"]
        wait_drained(scratch_url, args.drain_timeout)
        # Then with the workers running: ingest and scoring share the cores.
        with_args = [*load_args]
        with_args[with_args.index("--seed") + 1] = str(args.seed + 1)
        ruled, stored_with = send_load(args, with_args, scratch_url)
        with_rate = stored_with / ruled["elapsed_s"]
        tool = load_tool_module(args.load_tool)
        burst_ids = tool.build_requests(tool.parse_args(with_args))[1]
        drained = wait_drained(scratch_url, args.drain_timeout)
        paced_args = [*load_args]
        paced_args[paced_args.index("--seed") + 1] = str(args.seed + 2)
        paced_args[paced_args.index("--traces") + 1] = str(args.paced_traces)
        paced_args[paced_args.index("--spans-per-request") + 1] = "5"
        paced_args[paced_args.index("--base-time") + 1] = str(time.time())
        paced_ids = send_paced(tool, paced_args, args.paced_interval)
        wait_drained(scratch_url, args.drain_timeout)
        with psycopg.connect(scratch_url) as conn:
            scores = conn.execute(
                "SELECT status, count(*) FROM scoring_score GROUP BY status ORDER BY status"
            ).fetchall()
        return "\n".join(
            [
                f"with {args.rules} live rules ({', '.join(RULE_SCORERS[: args.rules])}), "
                f"{args.queue_workers} queue workers:",
                f"  ingest, no rule (again, warm): {none_rate:,.0f} spans/s "
                f"({unruled['elapsed_s']} s)",
                f"  ingest, {args.rules} live rules:       {with_rate:,.0f} spans/s "
                f"({ruled['elapsed_s']} s, {ruled['http_errors']} http errors)",
                f"  with rules / without:       {with_rate / none_rate:.0%}",
                f"  ingest, {args.rules} live rules, queue workers stopped: {quiet_rate:,.0f} "
                f"spans/s ({quiet['elapsed_s']} s): {quiet_rate / none_rate:.0%} of no rule",
                f"  burst scored in:            {drained:.1f} s after the last export "
                f"(scores by status: {dict(scores)})",
                f"  root arrival -> score, burst ({args.traces} traces): "
                + latency(scratch_url, burst_ids),
                f"  root arrival -> score, paced ({args.paced_traces} traces, one export of "
                f"5 spans every {args.paced_interval:g} s): " + latency(scratch_url, paced_ids),
            ]
        )

    try:
        manage = [PYTHON, str(REPO / "manage.py")]
        subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, check=True)
        key_output = subprocess.run(
            [*manage, "create_ingest_key", "bench"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        secret = key_output.strip().splitlines()[-1]

        port = free_port()
        server = subprocess.Popen(
            [
                *gunicorn_command(
                    f"127.0.0.1:{port}", workers=args.workers, bin_dir=Path(PYTHON).parent
                ),
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
        )
        wait_until_up(f"http://127.0.0.1:{port}/healthz")
        if args.rules:
            worker = subprocess.Popen(
                [*manage, "qcluster"],
                cwd=REPO,
                env={
                    **env,
                    "TRACESCORE_WORKERS": str(args.queue_workers),
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

        base_time = time.time()
        load_args = [
            "--endpoint",
            f"http://127.0.0.1:{port}/v1/traces",
            "--traces",
            str(args.traces),
            "--concurrency",
            str(args.concurrency),
            "--spans-per-request",
            str(args.spans_per_request),
            "--seed",
            str(args.seed),
            "--base-time",
            str(base_time),
            "--header",
            f"Authorization: Bearer {secret}",
            "--summary-json",
        ]
        print(
            f"sending {args.traces} traces, {args.concurrency} senders, "
            f"{args.workers} web server processes ({WORKER_CLASS}), PostgreSQL database {scratch}",
            flush=True,
        )
        load = subprocess.run(
            [PYTHON, str(args.load_tool), *load_args], capture_output=True, text=True
        )
        sys.stderr.write(load.stderr)
        summary = json.loads(load.stdout.strip().splitlines()[-1])
        with psycopg.connect(scratch_url) as conn:
            stored = conn.execute("SELECT count(*) FROM observability_span").fetchone()[0]
            traces = conn.execute(
                "SELECT count(*) FROM observability_trace WHERE has_root AND span_count > 1"
            ).fetchone()[0]
            wrong = conn.execute(
                "SELECT count(*) FROM observability_trace t WHERE span_count <> "
                "(SELECT count(*) FROM observability_span s WHERE s.trace_id = t.trace_id)"
            ).fetchone()[0]
        # Every export is stored before its answer is sent, so the last answer
        # marks the last span stored.
        ingest_rate = stored / summary["elapsed_s"]

        tool = load_tool_module(args.load_tool)
        bodies, _ = tool.build_requests(tool.parse_args(load_args))
        decoded_rate, decoded = decode_rate(bodies)
        reference, copy_only, rows = copy_reference(bodies, scratch_url)

        print(
            f"payload:         {summary['spans_total']} spans in {summary['requests']} requests "
            f"({summary['payload_mb']} MB), http errors {summary['http_errors']}, "
            f"rejected {summary['rejected_spans']}"
        )
        print(
            f"stored:          {stored} spans, {traces} complete traces, "
            f"{wrong} trace summaries disagreeing with their spans"
        )
        print(
            f"ingest, end to end:          {ingest_rate:,.0f} spans/s "
            f"({summary['elapsed_s']} s, {args.concurrency} senders)"
        )
        print(f"decode + map, one core:      {decoded_rate:,.0f} spans/s ({decoded} spans)")
        print(
            f"decode + COPY, one conn.:    {reference:,.0f} spans/s "
            f"(into a copy of the span table with its indexes, {rows} rows)"
        )
        print(f"COPY only, one connection:   {copy_only:,.0f} spans/s")
        print(f"ingest / one-connection decode + COPY: {ingest_rate / reference:.0%}")
        if args.rules:
            print(measure_rules(args, load_args, manage, env, scratch_url, summary), flush=True)
        return 0 if stored == summary["spans_total"] and not wrong else 1
    finally:
        if worker is not None:
            os.killpg(worker.pid, 9)
            worker.wait(timeout=30)
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            with psycopg.connect(args.database_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
