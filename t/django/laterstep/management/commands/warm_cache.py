# The deploy step after migrate: it imports a module the release forgot to
# ship, so it fails after the migration has been applied.
import importlib

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "warm the page cache (a post-migrate deploy step)"

    def handle(self, *args, **options):
        backend = importlib.import_module("laterstep.cache_backends")
        backend.warm()
