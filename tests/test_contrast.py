"""
Every badge's text is readable: WCAG 2.1 AA asks 4.5:1 for text of this size (the badges
are .78rem, below "large text"). Read from the stylesheet itself, so a new badge or a
changed colour is held to it too.
"""

import re
from pathlib import Path

import pytest

CSS = (Path(__file__).resolve().parent.parent / "static" / "css" / "app.css").read_text()
VARIABLES = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", CSS))
# `.badge-login { background: var(--ok-bg); color: var(--ok); }`, or colours written out.
BADGE = re.compile(r"\.(badge(?:-[\w-]+)?)\s*\{([^}]*)\}")


def _colour(declarations: str, prop: str, default: str) -> str:
    match = re.search(rf"(?<![\w-]){prop}:\s*(var\(--([\w-]+)\)|#[0-9a-fA-F]{{6}})", declarations)
    if match is None:
        return default
    return VARIABLES[match.group(2)] if match.group(2) else match.group(1)


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


BASE = dict(BADGE.findall(CSS))["badge"]
BADGES = {name: body for name, body in BADGE.findall(CSS) if name != "badge"}


def test_the_contrast_formula_gives_wcags_known_values():
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)


@pytest.mark.parametrize("name", sorted(BADGES))
def test_every_badge_has_aa_contrast(name):
    background = _colour(BADGES[name], "background", _colour(BASE, "background", "#ffffff"))
    text = _colour(BADGES[name], "color", _colour(BASE, "color", VARIABLES["text"]))
    assert contrast(text, background) >= 4.5, f".{name}: {text} on {background} is {contrast(text, background):.2f}:1"
