"""
`make bench`: build (or reuse) the benchmark dataset in PostgreSQL, measure the Activity
Log at scale and print a markdown table against the goals of issue 5. The full run saves
it to docs/benchmarks.md, the smoke run to var/benchmarks-smoke.md.

    python -m bench [--smoke] [--rebuild] [--only 1,7]

`--only` measures the listed goals alone (while working on one of them) and saves nothing:
docs/benchmarks.md only ever holds a whole run.

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
    parser.add_argument("--only", type=_goal_numbers, metavar="N[,N...]",
                        help="Measure only these goals (say 1,7); print the table and save nothing.")
    return parser.parse_args(argv)


def _goal_numbers(value: str) -> frozenset[str]:
    numbers = frozenset(part.strip().lstrip("#") for part in value.split(",")) - {""}
    if not numbers:
        raise argparse.ArgumentTypeError(f"no goal numbers in {value!r}")
    return numbers


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

    unknown = sorted((arguments.only or frozenset()) - runner.GOALS)
    if unknown:  # known only once the app is set up: the goals' code imports its models
        _log(f"python -m bench: error: argument --only: no goal {', '.join(unknown)}; "
             f"the goals are {', '.join(sorted(runner.GOALS, key=int))} (see --help)")
        return 2

    try:
        result = runner.run(SMOKE if arguments.smoke else FULL, rebuild=arguments.rebuild, only=arguments.only,
                            log=_log)
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
