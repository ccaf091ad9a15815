"""Recompute every client's hash chain, check it against an anchor, and write new anchors."""

from pathlib import Path

from django.core.management.base import CommandError

from activitylog.anchors import BadAnchor, anchor_problems, anchor_read, anchor_write
from activitylog.verification import chains_verify
from agencyhandy.commands import Command as BaseCommand
from agencyhandy.commands import database_id
from agencyhandy.lib.atomic_file import check_writable_path
from clients.models import Client

# 1 means tampering and nothing else: a cron job raises the alarm on it.
TAMPERING, BAD_ARGUMENTS, COULD_NOT_CHECK = 1, 2, 3


class Command(BaseCommand):
    help = (
        "Verify the tamper-evident hash chains of the client activity log. Exits 0 when "
        "every chain is intact (and matches --anchor), 1 when any event was edited, "
        "deleted, inserted or reordered, or cut from the end since the anchor, 2 for bad "
        "arguments or an unreadable anchor file, 3 when the check could not run (the "
        "database failed), and 130 on Ctrl-C."
    )
    database_failure_returncode = COULD_NOT_CHECK

    def add_arguments(self, parser) -> None:
        parser.add_argument("--client", type=database_id, action="append", metavar="ID",
                            help="Check only this client (may repeat).")
        parser.add_argument("--workers", type=int, choices=range(1, 17), metavar="N",
                            help="Processes to use on PostgreSQL (default: 2 for a large log, else 1).")
        parser.add_argument("--anchor", metavar="FILE",
                            help="Also fail if any chain is shorter than in this anchor, or its "
                                 "anchored head no longer matches.")
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
               write_anchor: str | None = None, workers: int | None = None, **options) -> None:
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

        report = chains_verify(
            client_ids=client, workers=workers,
            checkpoints={c: n for c, (n, _) in old_anchor.heads.items()} if old_anchor else None,
        )

        clients = len(report.heads)
        self.stdout.write(f"Checked {report.checked} events in {clients} client chains.")
        cut = {}
        if old_anchor:
            cut = anchor_problems(old_anchor, heads=report.heads, hashes_at=report.hashes_at,
                                  clients=set(client) if client else None)
        if not report.breaks and not cut:
            self.stdout.write(self.style.SUCCESS(
                "All chains intact" + (f" and consistent with the anchor of {old_anchor.written_at}." if old_anchor else ".")
            ))
            if write_anchor:
                anchor_write(Path(write_anchor), heads=report.heads)
                self.stdout.write(f"Wrote the heads of {clients} client chains to {write_anchor}.")
            return

        names = dict(Client.objects.filter(pk__in=[*report.breaks, *cut]).values_list("pk", "name"))
        for client_id, problem in sorted(report.breaks.items()):
            self.stdout.write(self.style.ERROR(f"Client {client_id} ({names.get(client_id, '?')}): broken at {problem}"))
        for client_id, problem in sorted(cut.items()):
            self.stdout.write(self.style.ERROR(f"Client {client_id} ({names.get(client_id, '?')}): {problem}"))
        if write_anchor:
            self.stdout.write(f"No anchor written to {write_anchor}: the log failed verification.")
        affected = len(set(report.breaks) | set(cut))
        raise CommandError(f"Tampering detected in {affected} of {max(clients, affected)} client chains.",
                           returncode=TAMPERING)
