"""Run the web server and one background worker together; Ctrl-C stops both.

The web server is the production command (``tracescore.server``: gunicorn
with uvicorn workers), so a local run behaves as production does: Django's
development server cannot read chunked request bodies, which every Node OTLP
exporter sends, and a sync server lets slow clients stall the site.
SIGINT (Ctrl-C), SIGTERM (process managers, ``timeout``) and SIGHUP (a closed
terminal) to this command stop the server and the worker alike.
"""

import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.core.management.base import BaseCommand

from tracescore.server import DEFAULT_WORKERS, gunicorn_command

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop(Exception):
    """A stop signal arrived."""


def _raise_stop(signum, frame):
    raise Stop(signal.Signals(signum).name)


class Command(BaseCommand):
    help = "Run the web server (the production command) and a django-q2 worker in the foreground."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--web-workers", type=int, default=DEFAULT_WORKERS)

    def handle(self, *args, addrport: str, web_workers: int, **options):
        for signum in STOP_SIGNALS:
            signal.signal(signum, _raise_stop)
        bin_dir = Path(sys.executable).parent
        processes = {}
        try:
            processes["worker"] = subprocess.Popen([sys.executable, "manage.py", "qcluster"])
            processes["web server"] = subprocess.Popen(
                [
                    *gunicorn_command(addrport, workers=web_workers, bin_dir=bin_dir),
                    "--access-logfile",
                    "-",
                ]
            )
            if self._wait_until_up(f"http://{addrport}/healthz", processes["web server"]):
                self.stdout.write(
                    self.style.SUCCESS(f"\ntracescore is running at http://{addrport}/\n")
                    + "Log in as admin with the password printed when the account was created\n"
                    "(or TRACESCORE_ADMIN_PASSWORD). Press Ctrl-C to stop the server and the "
                    "worker.\n",
                )
                self.stdout.flush()
            while all(p.poll() is None for p in processes.values()):
                time.sleep(0.5)
        except (Stop, KeyboardInterrupt):
            pass
        finally:
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
            self._stop(processes.values())
        failed = [name for name, p in processes.items() if p.returncode not in (0, -2, -15)]
        if failed:
            self.stderr.write(f"Stopped because the {' and the '.join(failed)} exited.")

    @staticmethod
    def _wait_until_up(url: str, web: subprocess.Popen, seconds: float = 30) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and web.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return True
            except OSError:
                time.sleep(0.3)
        return False

    @staticmethod
    def _stop(processes) -> None:
        # SIGTERM: the worker finishes its current tasks and the server exits.
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 15
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
