"""List the registered scorers and whether each can run here."""

from django.core.management.base import BaseCommand

from scoring.scorers import registry


class Command(BaseCommand):
    help = "List the registered scorers with their kind and availability."

    def handle(self, *args, **options):
        scorers = registry.all()
        width = max((len(s.id) for s in scorers), default=10)
        for scorer in scorers:
            available, why = scorer.availability()
            state = "available" if available else f"unavailable: {why}"
            self.stdout.write(f"{scorer.id:<{width}}  {scorer.kind:<4}  {state}")
            self.stdout.write(f"{'':<{width}}        {scorer.description}")
        self.stdout.write(f"{len(scorers)} scorers.")
