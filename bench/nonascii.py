"""The English texts with non-ASCII characters mixed in, built deterministically (issue 16, item 3).

Issue 16 measured that one curly quote or dash in each ASCII query takes m2v-edge off its ASCII-only fast path. This
variant keeps every word of each text and adds what real English text carries: typographic quotes and apostrophes,
en and em dashes, and an accented name. Every text of the variant holds at least one non-ASCII character, and the
same input always gives the same output (no randomness, no dependence on the machine).
"""

from __future__ import annotations

import re

ACCENTED_NAMES = (
    "José Núñez",
    "Zoë Brontë",
    "François Müller",
    "Björk Guðmundsdóttir",
    "Łukasz Dvořák",
    "Søren Ångström",
    "Renée Côté",
    "İlkay Gündoğan",
    "Mária Štefánik",
    "Chloé Ørsted",
)
"""Cycled through by text position: text i is signed with name i mod 10."""

_DOUBLE_QUOTED = re.compile(r'"([^"\n]*)"')
_SINGLE_QUOTED = re.compile(r"(?<![\w'])'([^'\n]*)'(?![\w'])")


def _typographic(text: str) -> str:
    """Straight quotes, apostrophes and ASCII dashes as a word processor would print them."""
    text = _DOUBLE_QUOTED.sub("\u201c\\1\u201d", text)  # "x" -> “x”
    text = _SINGLE_QUOTED.sub("\u2018\\1\u2019", text)  # 'x' -> ‘x’
    text = text.replace("'", "\u2019")  # apostrophes: don't -> don’t
    text = text.replace("--", "\u2014")  # em dash
    return text.replace(" - ", " \u2013 ")  # spaced hyphen -> en dash


def with_non_ascii(texts: list[str]) -> list[str]:
    """Each text made typographic and signed with an accented name after an en dash: `text – José Núñez`."""
    names = ACCENTED_NAMES
    return [f"{_typographic(text)} \u2013 {names[index % len(names)]}" for index, text in enumerate(texts)]
