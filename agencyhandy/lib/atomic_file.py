"""
Files that appear whole or not at all, for exports and chain anchors.

A reader (a compliance tool, a backup job, the next anchor check) must never pick up a
half-written file, and an interrupted run must not leave one behind that looks complete.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TextIO


@contextmanager
def atomic_write(path: Path) -> Iterator[TextIO]:
    """
    Open a text file (UTF-8, no newline translation) that becomes `path` when the block ends.

    The content goes to a temporary file in the same directory (so the rename stays on one
    file system), is fsynced, and is renamed over `path` only if the block finishes. Any
    exception, KeyboardInterrupt included, removes the temporary file and leaves `path` as
    it was. The file is created readable by its owner only (mode 0600): exports hold
    personal data.
    """
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    # The rename itself is durable only once the directory entry is on disk.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def check_writable_path(path: Path) -> str:
    """Why `path` cannot be written as a new file, or "" if it can. For clear CLI errors."""
    path = Path(path)
    try:
        if path.is_dir():
            return f"{path} is a directory."
        if not path.parent.is_dir():
            return f"The directory {path.parent} does not exist."
        if not os.access(path.parent, os.W_OK | os.X_OK):
            return f"Cannot write to the directory {path.parent}."
        name_max = os.pathconf(path.parent, "PC_NAME_MAX")
    except OSError as exc:  # a name too long, a loop of symbolic links...
        return f"Cannot use {path}: {exc.strerror}."
    # atomic_write's temporary file is the name with 18 more characters.
    if len(os.fsencode(path.name)) + 18 > name_max:
        return "The file name is too long."
    return ""
