"""
Content-Security-Policy: no inline script or style anywhere. In Chromium, with the tab
live and in Django admin: tests/test_browser.py.
"""

import re
from pathlib import Path

import pytest

from tests.servers import ROOT

TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))
# What a policy without 'unsafe-inline' (or 'unsafe-eval', for htmx's hx-on) blocks.
INLINE = {
    "a <script> without src": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I),
    "an inline event handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "a javascript: URL": re.compile(r"javascript:", re.I),
    "a style attribute": re.compile(r"\sstyle\s*=", re.I),
    "a <style> element": re.compile(r"<style\b", re.I),
    "htmx code in an attribute": re.compile(r"\bhx-on\b|\bhx-on:|[\"']js:", re.I),
}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_carries_inline_script_or_style(template: Path):
    text = template.read_text()
    found = [what for what, pattern in INLINE.items() if pattern.search(text)]
    assert found == []


@pytest.mark.django_db
def test_pages_send_a_policy_that_allows_only_our_own_scripts_and_styles(client):
    policy = client.get("/login/")["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
