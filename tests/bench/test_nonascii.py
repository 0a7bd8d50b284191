"""The English texts with non-ASCII characters mixed in (bench/nonascii.py), which issue 16's speed targets use."""

from __future__ import annotations

from bench.nonascii import with_non_ascii


def test_quotes_dashes_and_apostrophes_become_typographic_and_a_name_is_signed() -> None:
    texts = ['Say "hi" -- it\'s a - b', "'quoted' words", "plain"]
    assert with_non_ascii(texts) == [
        "Say \u201chi\u201d \u2014 it\u2019s a \u2013 b \u2013 Jos\u00e9 N\u00fa\u00f1ez",
        "\u2018quoted\u2019 words \u2013 Zo\u00eb Bront\u00eb",
        "plain \u2013 Fran\u00e7ois M\u00fcller",
    ]


def test_every_text_holds_non_ascii_and_the_same_input_gives_the_same_output() -> None:
    texts = [f"package {index} - does things" for index in range(25)]
    first, second = with_non_ascii(texts), with_non_ascii(list(texts))
    assert first == second
    assert len(first) == len(texts)
    assert not any(text.isascii() for text in first)
    assert all(text.startswith(f"package {index} \u2013 does things") for index, text in enumerate(first))
