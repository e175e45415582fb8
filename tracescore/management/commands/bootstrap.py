"""First-run set-up for `make run`: an admin account, an ingest key, demo traces.

Each step happens only once: on later runs the command prints what exists.
"""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

from observability.models import IngestKey, Trace
from observability.services import create_ingest_key

DEMO_TRACES = 200


class Command(BaseCommand):
    help = "Create the first admin account and ingest key, and load demo traces, once."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where the app runs.")
        parser.add_argument("--no-demo", action="store_true", help="Do not load demo traces.")

    def handle(self, *args, url: str, no_demo: bool, **options):
        self._admin()
        self._ingest_key(url)
        if not no_demo:
            self._demo()

    def _admin(self):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(
                "Admin account exists. Forgot the password? "
                "Run: .venv/bin/python manage.py changepassword admin"
            )
            return
        password = os.environ.get("TRACESCORE_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "", password)
        shown = (
            "(from TRACESCORE_ADMIN_PASSWORD)"
            if os.environ.get("TRACESCORE_ADMIN_PASSWORD")
            else password
        )
        self.stdout.write(self.style.SUCCESS("Created the admin account (shown only this once):"))
        self.stdout.write(f"    username: admin\n    password: {shown}")

    def _ingest_key(self, url: str):
        if IngestKey.objects.filter(revoked_at__isnull=True).exists():
            self.stdout.write(
                "An ingest key exists. New one: .venv/bin/python manage.py create_ingest_key NAME"
            )
            return
        _, secret = create_ingest_key(name="default")
        self.stdout.write(self.style.SUCCESS("Created an ingest key (shown only this once):"))
        self.stdout.write(
            "    Point any OpenTelemetry exporter at tracescore:\n"
            f"    export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={url}/v1/traces\n"
            f'    export OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer {secret}"\n'
            "    export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
        )

    def _demo(self):
        if Trace.objects.exists() or "seed_demo" not in get_commands():
            return
        call_command("seed_demo", traces=DEMO_TRACES, stdout=self.stdout)
