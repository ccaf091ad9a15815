"""
The docs name files that exist: docs/architecture.md walks a newcomer through the code
file by file, and a name left behind by a move would send them nowhere.
"""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "docs/architecture.md", "docs/benchmarks.md", "docs/deployment.md", "docs/scale.md"]
# `path/to/file.py`, `file.py`, `file.py: function`: whatever is quoted and ends in a source suffix.
FILE_NAME = re.compile(r"`([\w./-]+\.(?:py|html|js|css|toml|md))\b")
HASHED = re.compile(r"\.[0-9a-f]{12}\.")


def _tracked_files() -> set[str]:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode()
    return set(filter(None, listed.split("\0")))


@pytest.mark.parametrize("doc", DOCS)
def test_every_file_a_doc_names_exists(doc):
    files = _tracked_files()
    basenames = {Path(name).name for name in files}
    # Not a hashed name that collectstatic writes (app.22a94a6dd28c.css), shown as an example.
    named = {name for name in FILE_NAME.findall((ROOT / doc).read_text()) if not HASHED.search(name)}
    missing = sorted(
        name for name in named
        if not (name in files if "/" in name else name in basenames)
        and not any(f.endswith("/" + name) for f in files)
    )
    assert named and not missing, f"{doc} names files that do not exist: {missing}"
