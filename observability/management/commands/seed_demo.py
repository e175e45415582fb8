"""manage.py seed_demo --traces N [--seed S]: load realistic demo traces."""

import time

from django.core.management.base import BaseCommand, CommandError

from observability.demo import store_demo_traces


class Command(BaseCommand):
    help = (
        "Load demo traces (agent and workflow runs over the last 7 days). The same seed gives "
        "the same traces, so running it twice updates them instead of adding more."
    )

    def add_arguments(self, parser):
        parser.add_argument("--traces", type=int, default=200, help="How many traces (200).")
        parser.add_argument("--seed", type=int, default=0, help="Random seed (0).")
        parser.add_argument(
            "--batch-spans", type=int, default=5000, help="Spans per ingest transaction (5000)."
        )

    def handle(self, *args, traces: int, seed: int, batch_spans: int, **options):
        if traces < 0:
            raise CommandError("--traces must be 0 or more.")
        if batch_spans < 1:
            raise CommandError("--batch-spans must be 1 or more.")
        started = time.perf_counter()
        last_report = started

        def progress(done: int, spans: int) -> None:
            nonlocal last_report
            now = time.perf_counter()
            if options["verbosity"] >= 1 and now - last_report >= 5:
                last_report = now
                self.stdout.write(f"  {done:,} of {traces:,} traces ({spans:,} spans)…")

        stored_traces, stored_spans = store_demo_traces(
            traces, seed, batch_spans=batch_spans, progress=progress
        )
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {stored_traces:,} demo traces ({stored_spans:,} spans, seed {seed}) "
                f"in {elapsed:.1f} s."
            )
        )
