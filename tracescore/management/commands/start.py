"""Run the web server and one background worker together; Ctrl-C stops both."""

import subprocess
import sys
import time
import urllib.request

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the development web server and a django-q2 worker in the foreground."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport: str, **options):
        manage = [sys.executable, "manage.py"]
        worker = subprocess.Popen([*manage, "qcluster"])
        web = subprocess.Popen([*manage, "runserver", addrport, "--noreload"])
        processes = {"web server": web, "worker": worker}
        try:
            if self._wait_until_up(f"http://{addrport}/healthz", web):
                self.stdout.write(
                    self.style.SUCCESS(f"\ntracescore is running at http://{addrport}/\n")
                    + "Log in as admin with the password printed when the account was created\n"
                    "(or TRACESCORE_ADMIN_PASSWORD). Press Ctrl-C to stop the server and the "
                    "worker.\n"
                )
            while all(p.poll() is None for p in processes.values()):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
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
