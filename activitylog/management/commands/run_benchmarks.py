"""Run the performance benchmarks of issue 5 and print (and save) the results table."""

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from activitylog.benchmarks.database import BenchmarkSetupError
from activitylog.benchmarks.scale import FULL, SMOKE


class Command(BaseCommand):
    help = (
        "Build (or reuse) the benchmark dataset in PostgreSQL, measure the Activity Log at scale "
        "and print a markdown table against the goals. The full run saves it to docs/benchmarks.md. "
        "Needs DJANGO_SETTINGS_MODULE=agencyhandy.settings_bench (see `make bench`); the database "
        "is BENCH_DATABASE_URL and Redis is BENCH_REDIS_URL."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--smoke", action="store_true",
                            help="1/1000 of the full size: exercises every measurement in seconds.")
        parser.add_argument("--rebuild", action="store_true",
                            help="Drop the benchmark database and build the dataset again.")

    def handle(self, *args, smoke: bool, rebuild: bool, **options) -> None:
        if not getattr(settings, "BENCHMARK", False):
            raise CommandError(
                "run_benchmarks drops and fills its own database; run it with "
                "DJANGO_SETTINGS_MODULE=agencyhandy.settings_bench (`make bench` does).", returncode=2,
            )
        from activitylog.benchmarks import runner  # imports the app's models: after setup

        def log(message: str) -> None:
            self.stderr.write(message)
            sys.stderr.flush()

        try:
            result = runner.run(SMOKE if smoke else FULL, rebuild=rebuild, log=log)
        except BenchmarkSetupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(result)
