"""
`make bench`: build (or reuse) the benchmark dataset in PostgreSQL, measure the Activity
Log at scale and print a markdown table against the goals of issue 5. The full run saves
it to docs/benchmarks.md, the smoke run to var/benchmarks-smoke.md.

    python -m bench [--smoke] [--rebuild]

It always runs with bench/settings.py, whatever DJANGO_SETTINGS_MODULE says, because it
drops and fills its own database: BENCH_DATABASE_URL, with Redis at BENCH_REDIS_URL.
Exits 2 on a bad argument, 1 when PostgreSQL or Redis cannot be used (or their URLs
are wrong), 130 on Ctrl-C.
"""

import argparse
import os
import sys

SETTINGS = "bench.settings"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line with the reason, not argparse's usage screen.
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see --help)\n")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m bench",
                     description="Measure the Activity Log at scale against the goals of issue 5.")
    parser.add_argument("--smoke", action="store_true",
                        help="1/1000 of the full size: exercises every measurement in seconds.")
    parser.add_argument("--rebuild", action="store_true",
                        help="Drop the benchmark database and build the dataset again.")
    return parser.parse_args(argv)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS  # worker processes inherit it
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except (ImproperlyConfigured, ValueError) as exc:  # a BENCH_DATABASE_URL that is no URL, say
        _log(f"bench: configuration error: {_one_line(str(exc))}")
        return 1
    from bench import runner  # imports the app's models: after setup
    from bench.database import BenchmarkSetupError
    from bench.scale import FULL, SMOKE

    try:
        result = runner.run(SMOKE if arguments.smoke else FULL, rebuild=arguments.rebuild, log=_log)
    except BenchmarkSetupError as exc:
        _log(f"bench: {_one_line(str(exc))}")
        return 1
    except KeyboardInterrupt:
        _log("bench: interrupted")
        return 130
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
