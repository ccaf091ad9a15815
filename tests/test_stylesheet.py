"""
The stylesheets' blocks are balanced: one unclosed `@media {` silently swallows every
rule after it into that media query (a merge once did this, and the Activity Log's
summary overflowed its cards on a desktop).
"""

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static" / "css"
_COMMENTS_AND_STRINGS = re.compile(r'/\*.*?\*/|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', re.S)


def test_every_stylesheet_closes_each_block_it_opens():
    for path in STATIC.glob("*.css"):
        depth = 0
        for number, line in enumerate(_COMMENTS_AND_STRINGS.sub("", path.read_text()).splitlines(), 1):
            depth += line.count("{") - line.count("}")
            assert 0 <= depth <= 2, f"{path.name}:{number} is {depth} blocks deep"
        assert depth == 0, f"{path.name} leaves {depth} block(s) open"
