"""The native core's one-pass WordPiece path on texts that mix ASCII with other characters (pipeline.c's
mixed_spans): such a text is cut at ASCII whitespace, its all-ASCII words take the one-pass path and every other word
the general stages alone. That is exact only when no normalizer op looks across ASCII whitespace, so the texts here
put what could: combining marks after ASCII letters, punctuation and whitespace (e + U+0301 composes under NFC, so
does < + U+0338), CJK inside ASCII words, every kind of whitespace and control character, and truncation inside a
mixed word. potion-base-8M's real vocabulary, behind each normalizer the core supports on this path, against
tokenizers; a Precompiled normalizer (whose graphemes can join a space to the mark after it) must keep the general
path, and still give tokenizers' ids."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest
from helpers.normalizer_configs import LOCAL_NORMALIZERS
from tokenizers import Tokenizer, normalizers

from m2v_edge.export.tokenizer_file import compile_tokenizer
from m2v_edge.runtime import native


@pytest.fixture(autouse=True)
def _core_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests of the core itself: on even in the suite's core-off run (it must be built)."""
    monkeypatch.setenv(native.SWITCH, "1")


LOCAL = {
    **LOCAL_NORMALIZERS,
    "nfd-stripaccents-nfc-lowercase": lambda: normalizers.Sequence(
        [normalizers.NFD(), normalizers.StripAccents(), normalizers.NFC(), normalizers.Lowercase()]),
}

WORDS = ["the", "Editor", "don", "t", "GNU", "x86", "libfoo", "e", "a", "<", "=", ">", "(", "-", "--", "'", '"',
         "naïve", "Café", "Zoë", "İstanbul", "ΣΟΦΊΑ", "Straße", "ﬁle", "Ｆｕｌｌ", "①", "日本語", "한국어", "Москва"]
MARKS = ["\u0301", "\u0308", "\u0338", "\u0327", "\u0323", "\u0345", "\u20d0", "\u3099", "\u094d"]
INSIDE = ["\u201c", "\u201d", "\u2019", "\u2013", "\u2014", "\u00e9", "\u4e2d", "\u00ad", "\u200b", "\ufeff", "\x00",
          "\x01", "\x7f", "\u0600", "😀", "\u00a0"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\u00a0", "\u3000", "\u2028", "\x85", ""]
"""Every kind of whitespace, and 0x1C-0x1F, which Python counts as whitespace and tokenizers does not."""


def mixed_texts(count: int, seed: int) -> list[str]:
    """ASCII words with marks, other characters and whitespace of every kind put where they could join across."""
    rng = random.Random(seed)
    texts = ["e\u0301 e \u0301e", "<\u0338 = \u0338>", " \u0301x", "\r\n\u0301", "a\u00a0b c", "foo\u3000bar",
             "x\u4e2dy z", "“quoted” – José Núñez", "don’t\tstop\n", "\u0301", "\u00adsoft hy\u00adphen"]
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 16)):
            word = rng.choice(WORDS)
            if rng.random() < 0.3:
                at = rng.randint(0, len(word))
                word = word[:at] + rng.choice(MARKS + INSIDE) + word[at:]
            if rng.random() < 0.15:
                word = rng.choice(MARKS) + word
            parts.append(word + rng.choice(SPACES))
        texts.append("".join(parts))
    return texts


def core_and_reference(bundle: Path, normalizer, tmp_path: Path, max_length: int | None):
    reference = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    reference.normalizer = normalizer
    reference.no_padding()
    reference.no_truncation()
    if max_length is not None:
        reference.enable_truncation(max_length)
    spec = json.loads(reference.to_str())
    path = tmp_path / "tokenizer.m2v"
    path.write_bytes(compile_tokenizer(spec, reference, reference.get_vocab_size(with_added_tokens=True)))
    return native.NativeTokenizer(path, max_length), reference


def assert_same_ids(core: native.NativeTokenizer, reference: Tokenizer, texts: list[str], label: str) -> None:
    expected = [e.ids for e in reference.encode_batch_fast(texts, add_special_tokens=False)]
    batch = core.tokenize(texts)
    got = [batch.ids[o : o + n].tolist() for o, n in zip(batch.offsets, batch.lengths)]
    wrong = [i for i, ids in enumerate(expected) if got[i] != ids]
    assert not wrong, f"{label}: {len(wrong)} of {len(texts)} texts differ, e.g. {texts[wrong[0]]!r}"
    assert [core.tokenize_one(text) for text in texts[:200]] == expected[:200], label


@pytest.mark.parametrize("name", sorted(LOCAL))
def test_mixed_texts_take_the_one_pass_path_with_tokenizers_ids(potion_bundle, tmp_path, name) -> None:
    core, reference = core_and_reference(potion_bundle, LOCAL[name](), tmp_path, None)
    assert (core._core.ascii_one_pass, core._core.mixed_one_pass) == (1, 1), name
    assert_same_ids(core, reference, mixed_texts(1500, seed=len(name)), name)


@pytest.mark.parametrize("max_length", [1, 2, 5, 13])
def test_truncation_inside_a_mixed_word(potion_bundle, tmp_path, max_length) -> None:
    core, reference = core_and_reference(potion_bundle, normalizers.BertNormalizer(), tmp_path, max_length)
    assert core._core.mixed_one_pass == 1
    assert_same_ids(core, reference, mixed_texts(1500, seed=max_length), f"max_length={max_length}")


def test_a_precompiled_normalizer_keeps_the_general_path(potion_bundle, tokenlearn_source, tmp_path) -> None:
    spec = json.loads((tokenlearn_source / "tokenizer.json").read_text(encoding="utf-8"))
    charsmap = base64.b64decode(spec["normalizer"]["precompiled_charsmap"])
    normalizer = normalizers.Sequence([normalizers.Precompiled(charsmap), normalizers.BertNormalizer()])
    core, reference = core_and_reference(potion_bundle, normalizer, tmp_path, None)
    assert (core._core.ascii_one_pass, core._core.mixed_one_pass) == (0, 0)
    assert_same_ids(core, reference, mixed_texts(1500, seed=7), "precompiled")
