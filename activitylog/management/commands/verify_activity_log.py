"""Recompute the client activity log's hash chains, check them against an anchor, and write new anchors."""

from pathlib import Path

from django.core.management.base import CommandError

from activitylog.anchors import Anchor, BadAnchor, anchor_problems, anchor_read, anchor_write
from activitylog.verification import ChainReport, chains_verify, chains_verify_since
from agencyhandy.commands import Command as BaseCommand
from agencyhandy.commands import database_id
from agencyhandy.lib.atomic_file import check_writable_path
from clients.models import Client

# 1 means tampering and nothing else: a cron job raises the alarm on it.
TAMPERING, BAD_ARGUMENTS, COULD_NOT_CHECK = 1, 2, 3


class Command(BaseCommand):
    help = (
        "Verify the tamper-evident hash chains of the client activity log. Exits 0 when "
        "every chain is intact (and matches --anchor or --since-anchor), 1 when any event "
        "was edited, deleted, inserted or reordered, or cut from the end since the anchor, "
        "2 for bad arguments or an unreadable anchor file, 3 when the check could not run "
        "(the database failed), and 130 on Ctrl-C. Nightly: --since-anchor A --write-anchor A "
        "(reads only the new events); weekly: --anchor A --write-anchor A (reads every event)."
    )
    database_failure_returncode = COULD_NOT_CHECK

    def add_arguments(self, parser) -> None:
        parser.add_argument("--client", type=database_id, action="append", metavar="ID",
                            help="Check only this client (may repeat).")
        parser.add_argument("--workers", type=int, choices=range(1, 17), metavar="N",
                            help="Processes to use on PostgreSQL for a full check (default: 2 for a "
                                 "large log, else 1).")
        anchors = parser.add_mutually_exclusive_group()
        anchors.add_argument("--anchor", metavar="FILE",
                             help="Check every event, and also fail if any chain is shorter than in "
                                  "this anchor, or its anchored event changed.")
        anchors.add_argument("--since-anchor", metavar="FILE",
                             help="Check only the events added since this anchor, trusting those it "
                                  "covers (its anchored events and their count are checked, not their "
                                  "contents): the cost grows with the new events. Run a full check "
                                  "(--anchor) on a schedule too.")
        parser.add_argument("--write-anchor", metavar="FILE",
                            help="After a clean check, write every chain's head (event count and "
                                 "last hash) to FILE, atomically. Keep it outside the database.")

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except (CommandError, KeyboardInterrupt):
            raise
        except Exception as exc:
            # Whatever else goes wrong, exit 1 would be read as tampering: it is not.
            if options.get("traceback"):
                raise
            raise CommandError(
                f"The check could not run: {type(exc).__name__}: {str(exc)[:200]} (--traceback shows where).",
                returncode=COULD_NOT_CHECK,
            ) from None

    def handle(self, *args, client: list[int] | None = None, anchor: str | None = None,
               since_anchor: str | None = None, write_anchor: str | None = None, workers: int | None = None,
               **options) -> None:
        if since_anchor and workers:
            raise CommandError("--workers is for a full check: --since-anchor reads only the new events, "
                               "in one process.", returncode=BAD_ARGUMENTS)
        old_anchor = self._arguments(client=client, anchor=anchor or since_anchor, write_anchor=write_anchor)
        if since_anchor:
            report = chains_verify_since(old_anchor, client_ids=client)
            cut = report.anchor_problems
            self.stdout.write(f"Checked {report.checked} events added since the anchor of {old_anchor.written_at} "
                              f"in {len(report.heads)} client chains; took {report.trusted} events up to it on trust.")
        else:
            report = chains_verify(
                client_ids=client, workers=workers,
                checkpoints={c: n for c, (n, _) in old_anchor.heads.items()} if old_anchor else None,
            )
            self.stdout.write(f"Checked {report.checked} events in {len(report.heads)} client chains.")
            cut = {}
            if old_anchor:
                cut = anchor_problems(old_anchor, heads=report.heads, hashes_at=report.hashes_at,
                                      clients=set(client) if client else None)
        if not report.breaks and not cut:
            self._intact(report, old_anchor, write_anchor)
            return
        self._tampered(report, cut, write_anchor)

    def _arguments(self, *, client: list[int] | None, anchor: str | None, write_anchor: str | None) -> Anchor | None:
        """Check the arguments before any chain is read; return the anchor to check against, if any."""
        if client:
            known = set(Client.objects.filter(pk__in=client).values_list("pk", flat=True))
            unknown = sorted(set(client) - known)
            if unknown:
                raise CommandError(f"No client with id {', '.join(map(str, unknown))}.", returncode=BAD_ARGUMENTS)
        try:
            old_anchor = anchor_read(Path(anchor)) if anchor else None
        except BadAnchor as exc:
            raise CommandError(str(exc), returncode=BAD_ARGUMENTS) from None
        if write_anchor and (problem := check_writable_path(Path(write_anchor))):
            raise CommandError(f"Cannot write --write-anchor {write_anchor}: {problem}", returncode=BAD_ARGUMENTS)
        return old_anchor

    def _intact(self, report: ChainReport, old_anchor: Anchor | None, write_anchor: str | None) -> None:
        self.stdout.write(self.style.SUCCESS(
            "All chains intact" + (f" and consistent with the anchor of {old_anchor.written_at}." if old_anchor else ".")
        ))
        if write_anchor:
            anchor_write(Path(write_anchor), heads=report.heads)
            self.stdout.write(f"Wrote the heads of {len(report.heads)} client chains to {write_anchor}.")

    def _tampered(self, report: ChainReport, cut: dict[int, str], write_anchor: str | None) -> None:
        names = dict(Client.objects.filter(pk__in=[*report.breaks, *cut]).values_list("pk", "name"))
        for client_id, problem in sorted(report.breaks.items()):
            self.stdout.write(self.style.ERROR(f"Client {client_id} ({names.get(client_id, '?')}): broken at {problem}"))
        for client_id, problem in sorted(cut.items()):
            self.stdout.write(self.style.ERROR(f"Client {client_id} ({names.get(client_id, '?')}): {problem}"))
        if write_anchor:
            self.stdout.write(f"No anchor written to {write_anchor}: the log failed verification.")
        affected = len(set(report.breaks) | set(cut))
        raise CommandError(f"Tampering detected in {affected} of {max(len(report.heads), affected)} client chains.",
                           returncode=TAMPERING)
