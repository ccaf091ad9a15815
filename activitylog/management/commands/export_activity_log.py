"""Export the activity log as CSV or JSONL, streaming, to a file written atomically or to stdout."""

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import CommandError
from django.db import DatabaseError
from tqdm import tqdm

from activitylog import export
from activitylog.models import EventType
from activitylog.selectors import auth_events_for_export
from agencyhandy.commands import Command as BaseCommand
from agencyhandy.commands import database_id
from agencyhandy.lib.atomic_file import atomic_write, check_writable_path
from clients.models import Agency, Client


def _usage_error(message: str) -> CommandError:
    # Exit 2, like argparse: the command was called wrongly; nothing was read or written.
    return CommandError(message, returncode=2)


def _parse_moment(option: str, value: str | None) -> datetime | None:
    """ISO 8601 date or date-time; without an offset it is UTC, a bare date is 00:00 UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _usage_error(
            f"{option} {value!r} is not an ISO 8601 date or date-time (e.g. 2026-03-01 or 2026-03-01T09:30:00+01:00)."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is in the year 10000 in UTC
        raise _usage_error(f"{option} {value!r} is out of range once converted to UTC.") from None


def _parse_types(value: str | None) -> list[str]:
    if value is None:
        return []
    types = [t.strip() for t in value.split(",") if t.strip()]
    unknown = [t for t in types if t not in EventType.values]
    if unknown or not types:
        raise _usage_error(
            f"Unknown event type {', '.join(map(repr, unknown)) or repr(value)}; use any of {','.join(EventType.values)}."
        )
    return types


class _Progress:
    """Counts the rows written, for the closing line, and moves the progress bar on a terminal."""

    def __init__(self, bar: tqdm) -> None:
        self.bar, self.count = bar, 0

    def __call__(self, rows: int) -> None:
        self.count += rows
        self.bar.update(rows)


class Command(BaseCommand):
    help = (
        "Export activity log events, oldest first (by occurred_at, then id), as CSV "
        "(RFC 4180, spreadsheet-safe) or JSONL (exact values). Streams in constant memory. "
        "A file given with --output appears only when complete; Ctrl-C or an error leaves "
        "none behind. --excel starts a CSV with a UTF-8 byte order mark. Exit 2 means bad arguments."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--format", dest="output_format", choices=sorted(export.FORMATS), default="csv",
                            help="Default: csv.")
        parser.add_argument("--agency", action="append", metavar="SLUG", default=[],
                            help="Only this agency's events (may repeat).")
        parser.add_argument("--client", action="append", type=database_id, metavar="ID", default=[],
                            help="Only this client's events (may repeat).")
        parser.add_argument("--since", metavar="WHEN",
                            help="Events at or after WHEN: ISO 8601 date or date-time; no offset means UTC.")
        parser.add_argument("--until", metavar="WHEN",
                            help="Events before WHEN (exclusive); same format as --since.")
        parser.add_argument("--type", dest="types", metavar="TYPES",
                            help=f"Comma-separated event types: {','.join(EventType.values)}.")
        parser.add_argument("--output", "-o", metavar="PATH", default="-",
                            help="File to write (atomically, mode 0600), or - for stdout (default).")
        parser.add_argument("--excel", action="store_true",
                            help="CSV only: start with a UTF-8 byte order mark, so that Excel reads the text as UTF-8.")

    def handle(self, *args, output_format: str, agency: list[str], client: list[int], since: str | None,
               until: str | None, types: str | None, output: str, excel: bool, **options) -> None:
        if excel and output_format != "csv":
            raise _usage_error("--excel is for --format csv only: a byte order mark has no place in JSONL.")
        since_at, until_at = _parse_moment("--since", since), _parse_moment("--until", until)
        if since_at and until_at and since_at > until_at:
            raise _usage_error(f"--since {since} is after --until {until}.")
        event_types = _parse_types(types)
        agency_ids = self._agency_ids(agency)
        client_ids = self._client_ids(client)
        if output != "-" and (problem := check_writable_path(Path(output))):
            raise _usage_error(f"Cannot write --output {output}: {problem}")

        events = auth_events_for_export(
            agency_ids=agency_ids, client_ids=client_ids, since=since_at, until=until_at,
            event_types=event_types,
        )
        progress_stream = options.get("stderr") or sys.stderr
        show_progress = progress_stream.isatty()
        bar = tqdm(
            total=events.count() if show_progress else None,
            unit=" events", unit_scale=True, file=progress_stream, disable=not show_progress,
        )
        progress = _Progress(bar)
        chunks = export.export_chunks(events, output_format=output_format, bom=excel, progress=progress)
        try:
            self._write(chunks, output)
        finally:
            bar.close()
            # Ends a COPY still in progress now, rather than when the connection is reused.
            chunks.close()
        if output != "-":
            self.stderr.write(f"Wrote {progress.count} events to {output}.", style_func=self.style.SUCCESS)

    def _write(self, chunks, output: str) -> None:
        """Write the chunks (bytes) to stdout or, all or nothing, to the file `output`."""
        try:
            if output == "-":
                self._write_stdout(chunks)
            else:
                with atomic_write(Path(output)) as file:
                    # The bytes go straight to the file under the text layer, which holds nothing.
                    for chunk in chunks:
                        file.buffer.write(chunk)
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as Unix tools do. Point stdout at
            # /dev/null so that the interpreter's final flush does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(1) from None
        except OSError as exc:  # a full disk, a file larger than allowed...
            where = "stdout" if output == "-" else output
            raise CommandError(
                f"Could not write {where}: {exc.strerror or exc}.{'' if output == '-' else f' {output} was not written.'}"
            ) from None
        except KeyboardInterrupt:
            raise CommandError(
                "Interrupted." + ("" if output == "-" else f" {output} was not written."), returncode=130
            ) from None
        except DatabaseError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(
                f"The database failed during the export{'' if output == '-' else f'; {output} was not written'}: {reason}"
            ) from None

    def _write_stdout(self, chunks) -> None:
        stream = getattr(self.stdout, "buffer", None)  # None when stdout is text only (call_command)
        if stream is None:
            # Each chunk ends with a whole row, so it decodes on its own.
            for chunk in chunks:
                self.stdout.write(chunk.decode(), ending="")
        else:
            self.stdout.flush()
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()

    def _agency_ids(self, slugs: list[str]) -> list[int]:
        found = dict(Agency.objects.filter(slug__in=slugs).values_list("slug", "pk"))
        unknown = [s for s in slugs if s not in found]
        if unknown:
            raise _usage_error(f"No agency with slug {', '.join(map(repr, unknown))}.")
        return [found[s] for s in slugs]

    def _client_ids(self, ids: list[int]) -> list[int]:
        known = set(Client.objects.filter(pk__in=ids).values_list("pk", flat=True))
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise _usage_error(f"No client with id {', '.join(map(str, unknown))}.")
        return ids
