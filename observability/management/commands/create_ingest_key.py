"""manage.py create_ingest_key NAME: a new key for an OTLP exporter, printed last."""

from django.core.management.base import BaseCommand

from observability.services import create_ingest_key


class Command(BaseCommand):
    help = "Create an ingest key for OTLP exporters and print it (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="What the key is for, e.g. 'checkout-agent prod'.")

    def handle(self, *args, name: str, **options):
        key, secret = create_ingest_key(name=name)
        self.stdout.write(f"Created ingest key {key.name!r} ({key.prefix}…). Send it as")
        self.stdout.write(f"    Authorization: Bearer {secret}")
        self.stdout.write("It is shown only now. The key:")
        self.stdout.write(secret)
