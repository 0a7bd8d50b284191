"""The native core against tokenizers, stage by stage and end to end, on every code point and on fuzzed Unicode.

Expected values always come from tokenizers itself (`normalize_str`, `pre_tokenize_str`, `encode_batch_fast`), never
from m2v-edge. Covered: each supported normalizer on every Unicode scalar value one at a time and on random sequences
(combining marks in every order, Hangul jamo and syllables, emoji and regional-indicator sequences, Indic conjuncts,
controls and every whitespace); each supported pre-tokenizer; full pipelines (the real potion-base-8M WordPiece and the
real 276k-piece multilingual Unigram of tokenlearn-static-model) on fuzzed texts of every script, with added tokens
and at the truncation boundaries.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest
from helpers.charsmap import build_charsmap
from helpers.normalizer_configs import LOCAL_NORMALIZERS
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from bench.multilingual_model import tokenlearn_tokenizer_file
from m2v_edge.export.tokenizer_file import compile_tokenizer
from m2v_edge.runtime import native


@pytest.fixture(autouse=True)
def _core_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are of the core itself: it is on here even in the suite's core-off run (it must be built)."""
    monkeypatch.setenv(native.SWITCH, "1")

SCALARS = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
CHUNK = 2048


def core_for(normalizer=None, pre_tokenizer=None, tmp_path: Path | None = None) -> native.NativeTokenizer:
    """A native tokenizer whose pipeline is `normalizer` then `pre_tokenizer` (the model is a trivial WordPiece)."""
    tokenizer = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    if pre_tokenizer is not None:
        tokenizer.pre_tokenizer = pre_tokenizer
    data = compile_tokenizer(json.loads(tokenizer.to_str()), tokenizer, 2)
    path = tmp_path / "tokenizer.m2v"
    path.write_bytes(data)
    return native.NativeTokenizer(path, None)


def tokenlearn_charsmap() -> str:
    spec = json.loads(tokenlearn_tokenizer_file().read_text(encoding="utf-8"))
    return spec["normalizer"]["precompiled_charsmap"]


NORMALIZERS = {
    **LOCAL_NORMALIZERS,
    "strip": normalizers.Strip,
    "replace-prepend": lambda: normalizers.Sequence(
        [normalizers.Replace("ab", "X\u0301"), normalizers.Prepend("\u2581")]),
    "precompiled-tokenlearn": lambda: normalizers.Precompiled(base64.b64decode(tokenlearn_charsmap())),
}


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_every_code_point_normalizes_as_in_tokenizers(tmp_path: Path, name: str) -> None:
    """Each Unicode scalar value alone (between newlines, which neither compose nor join a grapheme)."""
    normalizer = NORMALIZERS[name]()
    core = core_for(normalizer, tmp_path=tmp_path)
    wrong = []
    for start in range(0, len(SCALARS), CHUNK):
        text = "\n".join(SCALARS[start : start + CHUNK])
        expected = normalizer.normalize_str(text)
        if core.normalize(text) != expected:
            for char in SCALARS[start : start + CHUNK]:
                if core.normalize(char) != normalizer.normalize_str(char):
                    wrong.append(f"U+{ord(char):04X}")
            assert wrong or core.normalize(text) == expected, f"{name}: chunk at U+{ord(SCALARS[start]):04X} differs"
    assert not wrong, f"{name}: {len(wrong)} code points differ: {wrong[:20]}"


# ----------------------------------------------------------------------------------------- random sequences

MARKS = [chr(c) for c in (0x0300, 0x0301, 0x0308, 0x0316, 0x0323, 0x0327, 0x0334, 0x0345, 0x05B0, 0x05B7, 0x0591,
                          0x064B, 0x0651, 0x093C, 0x094D, 0x09CD, 0x0E38, 0x0E48, 0x1DCE, 0x20D0, 0x302A, 0x3099,
                          0x309A, 0xFE20, 0x1D165, 0x1D16D, 0x0F71, 0x0F72, 0x0F74, 0x0F80)]
BASES = list("aeiouAEIOUnNcCsSzZ") + ["Å", "ø", "ß", "İ", "ı", "Σ", "ς", "ᾳ", "ꙋ", "ﬁ", "Ａ", "ｶ", "ﾞ", "①", "²", "㎏",
                                      "\u0b47", "\u0b3e", "\u0cc6", "\u0cd5", "\u0d46", "\u0d3e", "\u1025", "\u102e"]
HANGUL = [chr(c) for c in (0x1100, 0x1105, 0x1112, 0x1161, 0x1169, 0x1175, 0x11A8, 0x11AF, 0x11C2, 0xAC00, 0xAC01,
                           0xB098, 0xD7A3, 0x3131, 0xFFA1)]
EMOJI = ["😀", "👍", "🏽", "\u200d", "\u200c", "❤", "\ufe0f", "👨", "👩", "🏳", "🌈", "🇯", "🇵", "🇺", "🇸", "©", "®", "‼"]
INDIC = ["क", "ष", "त", "र", "\u094d", "\u093f", "\u0940", "\u0902", "ং", "\u09cd", "য", "\u200d", "\u0d4d", "റ"]
CONTROLS = ["\r", "\n", "\r\n", "\t", "\x00", "\x01", "\x7f", "\x85", "\u200b", "\u2028", "\u00a0", "\u3000", "\ufeff",
            "\u0600", "\u0890", "\U000110bd", " ", "\u061c"]
POOLS = [MARKS, BASES, HANGUL, EMOJI, INDIC, CONTROLS]


def random_sequences(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        pools = rng.sample(POOLS, rng.randint(1, 3))
        texts.append("".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 14))))
    return texts


SEQUENCE_NORMALIZERS = ["nfd", "nfkd", "nfc", "nfkc", "nfkc-lowercase", "nfd-stripaccents-nfc", "precompiled-tokenlearn",
                        "bert-clean1-cjk1-stripNone-lower1", "bert-clean0-cjk0-stripTrue-lower0", "strip-accents"]


@pytest.mark.parametrize("name", SEQUENCE_NORMALIZERS)
def test_random_sequences_normalize_as_in_tokenizers(tmp_path: Path, name: str) -> None:
    normalizer = NORMALIZERS[name]()
    core = core_for(normalizer, tmp_path=tmp_path)
    for text in random_sequences(6000, seed=hash(name) % 1000):
        assert core.normalize(text) == normalizer.normalize_str(text), (name, [f"U+{ord(c):04X}" for c in text])


def test_graphemes_decide_what_the_charsmap_replaces(tmp_path: Path) -> None:
    """A charsmap entry for a character replaces the whole grapheme it starts when the grapheme is shorter than 6
    bytes (tokenizers' Precompiled): so every grapheme rule shows in the output."""
    keys = {char: f"<{ord(char):x}>" for char in {*BASES[:20], *HANGUL, *EMOJI, *INDIC, "\r", "\n", "a", "क"}}
    keys.update({"e\u0301": "é!", "\u1100\u1161": "가!"})
    normalizer = normalizers.Precompiled(build_charsmap(keys))
    core = core_for(normalizer, tmp_path=tmp_path)
    for text in random_sequences(8000, seed=3) + ["\r\n", "\r\r\n\n", "e\u0301\u0301", "🇯🇵🇺", "क\u094dष"]:
        assert core.normalize(text) == normalizer.normalize_str(text), [f"U+{ord(c):04X}" for c in text]


# ----------------------------------------------------------------------------------------- pre-tokenizers

PRE_TOKENIZERS = {
    "bert": pre_tokenizers.BertPreTokenizer,
    "whitespace": pre_tokenizers.Whitespace,
    "whitespace-split": pre_tokenizers.WhitespaceSplit,
    "metaspace-always": lambda: pre_tokenizers.Metaspace(prepend_scheme="always"),
    "metaspace-never-nosplit": lambda: pre_tokenizers.Metaspace(prepend_scheme="never", split=False),
    "metaspace-other-char": lambda: pre_tokenizers.Metaspace(replacement="_"),
    **{f"punctuation-{b}": lambda b=b: pre_tokenizers.Punctuation(b)
       for b in ("removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous")},
    "digits": pre_tokenizers.Digits,
    "digits-individual": lambda: pre_tokenizers.Digits(individual_digits=True),
    "char-delimiter": lambda: pre_tokenizers.CharDelimiterSplit("-"),
    **{f"split-{b}{'-invert' if i else ''}": lambda b=b, i=i: pre_tokenizers.Split("ab", b, invert=i)
       for b in ("removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous") for i in (False, True)},
    "sequence-whitespace-split-metaspace": lambda: pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace()]),
}
PRE_TOKENIZER_TEXTS = [
    "", " ", "a", "ab", "abab ab-ab", "Hello, World! It's 3:45pm -- ok?", "  lead  and trail  ", "x--y--", "-a-",
    "数字 123 ٣٤ ①② ⅻ", "a\u00a0b\u3000c\td\ne", "don't  stop!!!", "▁a▁▁b", "_under_score_", "ab" * 20,
    "中文，标点。", "한국어 텍스트", "emoji😀👍🏽word", "e\u0301 ë", "$5.00 (yes) [no] {maybe}",
]


@pytest.mark.parametrize("name", sorted(PRE_TOKENIZERS))
def test_pre_tokenizers_split_as_in_tokenizers(tmp_path: Path, name: str) -> None:
    pre_tokenizer = PRE_TOKENIZERS[name]()
    core = core_for(pre_tokenizer=pre_tokenizer, tmp_path=tmp_path)
    rng = random.Random(name)
    pool = "ab -_,.!?1٣①\u00a0\t\n▁éｶ中😀"
    texts = PRE_TOKENIZER_TEXTS + ["".join(rng.choice(pool) for _ in range(rng.randint(0, 20))) for _ in range(600)]
    for text in texts:
        expected = [piece for piece, _ in pre_tokenizer.pre_tokenize_str(text)]
        assert core.pre_tokenize(text) == expected, (name, text)


# ----------------------------------------------------------------------------------------- whole pipelines

SCRIPT_BLOCKS = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x52F), (0x590, 0x6FF), (0x900, 0xDFF), (0xE00, 0xFFF),
                 (0x1100, 0x11FF), (0x1E00, 0x1FFF), (0x2000, 0x2BFF), (0x3000, 0x30FF), (0x4E00, 0x9FFF),
                 (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF), (0x10000, 0x1D7FF), (0x20000, 0x2A6DF)]


def fuzzed_texts(count: int, seed: int, added: list[str]) -> list[str]:
    """Words of random characters from every script block, mark sequences, whitespace of every kind, and the
    added tokens' texts, in random mixes."""
    rng = random.Random(seed)
    texts = random_sequences(count // 4, seed)
    separators = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", ", ", ".", "-", ""]
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 20)):
            roll = rng.random()
            if roll < 0.1 and added:
                parts.append(rng.choice(added))
            elif roll < 0.25:
                parts.append("".join(rng.choice(rng.choice(POOLS)) for _ in range(rng.randint(1, 4))))
            else:
                low, high = rng.choice(SCRIPT_BLOCKS)
                parts.append("".join(chr(rng.randint(low, high)) for _ in range(rng.randint(1, 9))))
            parts.append(rng.choice(separators))
        texts.append("".join(part for part in parts if not any(0xD800 <= ord(c) <= 0xDFFF for c in part)))
    return texts


@pytest.mark.parametrize("model", ["potion", "tokenlearn"])
def test_real_pipelines_give_tokenizers_ids(request, multilingual_texts, model) -> None:
    """potion-base-8M's WordPiece and tokenlearn's multilingual Unigram, bundle as exported, on fuzzed Unicode,
    the multilingual corpus, and texts at the truncation length (max_length - 1 to 2 x max_length tokens)."""
    from m2v_edge.bundle import read_manifest

    bundle = request.getfixturevalue(f"{model}_bundle")
    manifest = read_manifest(bundle)
    reference = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    reference.no_padding()
    max_length = manifest.max_length or 512
    reference.enable_truncation(max_length)
    added = [token.content for token in reference.get_added_tokens_decoder().values()]
    words = [w for w in multilingual_texts[8000].split()][:50] or ["word"]
    boundary = [" ".join(words[i % len(words)] for i in range(n)) for n in (max_length - 1, max_length, 2 * max_length)]
    texts = [*fuzzed_texts(3000, seed=len(model), added=added), *multilingual_texts, *boundary]
    core = native.NativeTokenizer(bundle / "tokenizer.m2v", max_length, threads=2)
    expected = [e.ids for e in reference.encode_batch_fast(texts, add_special_tokens=False)]
    batch = core.tokenize(texts)
    got = [batch.ids[o : o + n].tolist() for o, n in zip(batch.offsets, batch.lengths)]
    wrong = [index for index, ids in enumerate(expected) if got[index] != ids]
    assert not wrong, f"{len(wrong)} texts differ, e.g. {texts[wrong[0]][:80]!r}"
    assert [core.tokenize_one(text) for text in texts[:500]] == expected[:500]
