"""Run the web server and one background worker together; Ctrl-C stops both."""

import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the development web server and a django-q2 worker in the foreground."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport: str, **options):
        manage = [sys.executable, "manage.py"]
        worker = subprocess.Popen([*manage, "qcluster"])
        web = subprocess.Popen([*manage, "runserver", addrport, "--noreload"])
        self.stdout.write(
            self.style.SUCCESS(f"\ntracescore is running at http://{addrport}/\n")
            + "Log in as admin with the password printed when the account was created\n"
            "(or TRACESCORE_ADMIN_PASSWORD). Press Ctrl-C to stop the server and the worker.\n"
        )
        processes = [web, worker]
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 10
            for process in processes:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
        failed = [p.args[2] for p in processes if p.returncode not in (0, None, -2, 130)]
        if failed:
            self.stderr.write(f"Stopped: {', '.join(failed)} exited with an error.")
