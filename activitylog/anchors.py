"""
Chain anchors: each client's chain head, kept outside the database.

A hash chain shows that the rows it has are consistent, but not that none were cut from
its end: a shorter chain is still a valid chain. An anchor records, for every client, how
many events its chain had and the hash of the last one. Later, every chain must still be
at least that long and its event at the anchored position must still carry the anchored
hash. More events since the anchor are fine. Someone who can change the database but not
the anchors (kept elsewhere, written on a schedule) cannot hide a cut.
"""

import json
import re
import reprlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.utils import timezone

from activitylog.chain import format_timestamp
from agencyhandy.lib.atomic_file import atomic_write

FORMAT = "agencyhandy-activitylog-anchor"
VERSION = 1
_HASH = re.compile(r"[0-9a-f]{64}")


class BadAnchor(ValueError):
    """The anchor file is missing, unreadable or not an anchor."""


@dataclass(frozen=True)
class Anchor:
    written_at: str
    heads: dict[int, tuple[int, str]]  # client id -> (events, hash of the last one)


def anchor_write(path: Path, *, heads: dict[int, tuple[int, str]], now: datetime | None = None) -> None:
    """Write the chain heads as an anchor file, atomically (complete or not at all)."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "written_at": format_timestamp(now or timezone.now()),
        "chains": {
            str(client_id): {"events": count, "head_hash": head}
            for client_id, (count, head) in sorted(heads.items())
        },
    }
    with atomic_write(path) as file:
        json.dump(document, file, indent=1)
        file.write("\n")


def anchor_read(path: Path) -> Anchor:
    """Read and validate an anchor file; BadAnchor says what is wrong with it."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadAnchor(f"Anchor file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadAnchor(f"Cannot read anchor file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadAnchor(f"Anchor file {path} is not JSON ({exc.msg} at line {exc.lineno}).") from None
    except (RecursionError, ValueError) as exc:
        # Nested deeper than Python's stack, or a number of thousands of digits: not an
        # anchor, and certainly not tampering.
        reason = "nested too deeply" if isinstance(exc, RecursionError) else "a number too long"
        raise BadAnchor(f"Anchor file {path} is not an anchor ({reason}).") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BadAnchor(f"{path} is not an activity log anchor (no \"format\": \"{FORMAT}\").")
    if document.get("version") != VERSION:
        raise BadAnchor(
            f"Anchor file {path} has version {reprlib.repr(document.get('version'))}; this tool reads {VERSION}."
        )
    chains = document.get("chains")
    if not isinstance(chains, dict):
        raise BadAnchor(f"Anchor file {path} has no \"chains\" object.")
    heads = {}
    for key, entry in chains.items():
        count = entry.get("events") if isinstance(entry, dict) else None
        head = entry.get("head_hash") if isinstance(entry, dict) else None
        valid = (
            re.fullmatch(r"[0-9]{1,18}", key) and isinstance(count, int) and not isinstance(count, bool) and count > 0
            and isinstance(head, str) and _HASH.fullmatch(head)
        )
        if not valid:
            raise BadAnchor(f"Anchor file {path} has a malformed entry for client {key[:40]!r}.")
        heads[int(key)] = (count, head)
    written_at = document.get("written_at")
    return Anchor(written_at=written_at[:40] if isinstance(written_at, str) else "?", heads=heads)


def anchor_problems(anchor: Anchor, *, heads: dict[int, tuple[int, str]], hashes_at: dict[int, str],
                    clients: set[int] | None = None) -> dict[int, str]:
    """
    What no longer matches the anchor, by client. `heads` and `hashes_at` come from a
    chain check run with `checkpoints` = the anchor's counts. `clients` limits the check.
    """
    problems = {}
    for client_id, (anchored_count, anchored_hash) in anchor.heads.items():
        if clients is not None and client_id not in clients:
            continue
        count = heads.get(client_id, (0, ""))[0]
        if count < anchored_count:
            problems[client_id] = (
                f"has {count} events but had {anchored_count} at the anchor of {anchor.written_at}: "
                "events were cut from the end of the chain"
            )
        elif hashes_at.get(client_id) != anchored_hash:
            problems[client_id] = (
                f"event {anchored_count} of the chain no longer has the hash anchored at {anchor.written_at}: "
                "the chain was cut and regrown, or rewritten"
            )
    return problems
