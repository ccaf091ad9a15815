"""
What every management command of this project shares: bad arguments are one line on
stderr and exit 2 (not argparse's usage screen, and never a traceback), a database that
fails is one line too, and Ctrl-C is exit 130. Cron jobs and operators read the exit
code; whoever reads the output needs the reason, not a stack.
"""

import argparse

from django.core.management.base import BaseCommand, CommandError, SystemCheckError
from django.db import DatabaseError

MAX_ID = 2**63 - 1  # the databases' bigint


def database_id(value: str) -> int:
    """argparse type for a row id: a whole number from 1 to 2**63 - 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid id {value[:40]!r}: ids are whole numbers") from None
    if not 1 <= number <= MAX_ID:
        raise argparse.ArgumentTypeError(f"invalid id {value[:40]!r}: ids run from 1 to {MAX_ID}")
    return number


def _not_text(value) -> bool:
    # A NUL cannot be stored or passed on; a lone surrogate is a command-line byte that was
    # not UTF-8, which cannot be stored, sent or printed either.
    values = value if isinstance(value, list | tuple) else [value]
    return any(
        isinstance(v, str) and ("\x00" in v or any("\ud800" <= c <= "\udfff" for c in v)) for v in values
    )


_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines() splits on


def _one_line(message: str) -> str:
    # A value from the command line in a message (a path may hold a line break) must not
    # break the promise of one line.
    return "".join(c.encode("unicode_escape").decode() if c in _LINE_BREAKS else c for c in message)


class Command(BaseCommand):
    """The base of this project's management commands (see the module's docstring)."""

    # The exit code when the database fails. verify_activity_log sets its own: there, 1
    # means tampering and nothing else.
    database_failure_returncode = 1

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message: str):
            message = _one_line(f"{message} (see --help)")
            if parser.called_from_command_line:
                parser.exit(2, f"CommandError: {message}\n")
            raise CommandError(message, returncode=2)

        parser.error = error
        return parser

    def execute(self, *args, **options):
        if options.get("force_color") and options.get("no_color"):
            raise CommandError("--no-color and --force-color cannot be used together.", returncode=2)
        for value in [*args, *options.values()]:
            if _not_text(value):
                raise CommandError(
                    f"Not valid text: {value!r:.80} holds a NUL character or bytes that are not UTF-8.", returncode=2
                )
        try:
            return super().execute(*args, **options)
        except SystemCheckError:
            raise
        except CommandError as exc:
            if (message := _one_line(str(exc))) != str(exc):
                raise CommandError(message, returncode=exc.returncode) from None
            raise
        except DatabaseError as exc:
            if options.get("traceback"):
                raise
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(f"The database failed: {reason}", returncode=self.database_failure_returncode) from None
        except KeyboardInterrupt:
            raise CommandError("Interrupted.", returncode=130) from None
