"""The native core's token ids on aarch64 against tokenizers' (its aarch64 build), bit for bit.

The same C sources meet aarch64's differences here (`char` is unsigned, another compiler's choices, another libm),
so the ids the core gives under emulation must equal tokenizers' for the same tokenizer.json, batch and one text per
call, on:
- potion-base-8M as exported on x86-64 (WordPiece behind BertNormalizer and BertPreTokenizer),
- tiny models exported here, on aarch64 (tests/helpers/tiny_models.py): WordPiece; Unigram behind Metaspace, with a
  token limit and without,
- a tiny Unigram model behind sentencepiece's Precompiled normalizer and Metaspace (the multilingual models'
  pipeline), its charsmap written by tests/helpers/charsmap.py,
over the parity texts, seeded fuzzed Unicode (many scripts, combining marks, full-width and half-width forms, every
whitespace and control character, format characters, private use, noncharacters, lone surrogates, added tokens) and
texts at the token limit. Expected ids come from tokenizers with model2vec's settings (no special tokens, truncation
to max_length); lone surrogates read as U+FFFD, as m2v-edge reads them. run_tests.sh runs this file with the core on.
"""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path

import numpy as np
import pytest
from helpers.charsmap import precompiled_spec
from helpers.tiny_models import build_tokenizer, write_model2vec_folder
from tokenizers import Tokenizer

from m2v_edge.bundle import read_manifest
from m2v_edge.runtime import native
from m2v_edge.runtime.tokenizing import open_tokenizer

SURROGATES = re.compile("[\ud800-\udfff]")
SINGLE_TEXTS = 150
"""Texts also tokenized one per call (`tokenize_one`), from the start of each list."""

RANGES = [
    (0x0041, 0x024F),  # Latin, Latin-1 Supplement, Latin Extended-A/B
    (0x0370, 0x03FF), (0x0400, 0x04FF),  # Greek, Cyrillic
    (0x0590, 0x05FF), (0x0600, 0x06FF),  # Hebrew, Arabic
    (0x0900, 0x097F), (0x0E00, 0x0E7F),  # Devanagari, Thai
    (0x1100, 0x11FF), (0xAC00, 0xD7A3),  # Hangul Jamo, Hangul syllables
    (0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0x20000, 0x2A6DF),  # kana, CJK ideographs
    (0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x20D0, 0x20FF),  # combining marks
    (0xFF00, 0xFFEF),  # full-width and half-width forms
    (0x2000, 0x206F),  # general punctuation: spaces, zero-width and format characters
    (0x1F300, 0x1FAFF),  # emoji and symbols
    (0xE000, 0xF8FF), (0xF0000, 0xF00FF),  # private use
    (0x0000, 0x001F), (0x007F, 0x009F),  # C0 and C1 controls
]
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
ODD = ["\ufeff", "\ufffe", "\uffff", "\U0010ffff", "\u0378", "\ud800", "\udfff", "\ufffd", "\u200d", "\u00ad"]
ADDED = ["[CLS]", "[SEP]", "[UNK]", "[PAD]", "<unk>", "<pad>"]
PRECOMPILED_RULES = {
    "Ａ": "A", "ｂ": "b", "１": "1", "ﬁ": "fi", "①": "1", "Ⅻ": "XII", "\u3000": " ", "e\u0301": "é", "ｶ": "カ",
    "ß": "ss", "™": "TM", "…": "...", "\u00a0": " ", "ǅ": "Dž",
}
"""A charsmap in the manner of sentencepiece's NFKC tables: one-to-many, many-to-one, ASCII and not."""


def fuzzed_texts(count: int, seed: int = 16) -> list[str]:
    """Seeded random texts of 1 to 12 'words' drawn from `RANGES`, `ODD` and the added tokens, joined by every
    kind of whitespace (or nothing); then each whitespace and control character alone between two letters."""
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(count):
        words = []
        for _ in range(int(rng.integers(1, 13))):
            pick = rng.random()
            if pick < 0.08:
                words.append(str(rng.choice(ADDED)))
            elif pick < 0.16:
                words.append("".join(rng.choice(ODD, size=int(rng.integers(1, 4)))))
            else:
                low, high = RANGES[int(rng.integers(len(RANGES)))]
                words.append("".join(chr(int(c)) for c in rng.integers(low, high + 1, size=int(rng.integers(1, 9)))))
        separators = rng.choice([*WHITESPACE, " ", " ", ""], size=len(words))
        texts.append("".join(word + sep for word, sep in zip(words, separators)))
    texts += [f"a{c}b" for c in WHITESPACE] + [f"x{chr(c)}y" for c in [*range(0x20), *range(0x7F, 0xA0)]]
    return texts


def limit_texts(max_length: int | None) -> list[str]:
    """Texts just below, at and above the token limit (or long ones, without a limit), several words long each."""
    n = 600 if max_length is None else max_length
    return [
        *(" ".join(["the"] * k) for k in (n - 1, n, n + 1)),
        " ".join(["naïve", "東京", "fox"] * (n // 2 + 1)),
        "x" * (n * 3),
    ]


def tokenizers_ids(bundle: Path, texts: list[str]) -> list[list[int]]:
    """tokenizers' ids for `texts` with model2vec's settings, read from the bundle's tokenizer.json."""
    max_length = read_manifest(bundle).max_length
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation() if max_length is None else tokenizer.enable_truncation(max_length)
    cleaned = [SURROGATES.sub("\ufffd", text) for text in texts]
    return [encoding.ids for encoding in tokenizer.encode_batch_fast(cleaned, add_special_tokens=False)]


def assert_same_ids(label: str, texts: list[str], ours: list[list[int]], expected: list[list[int]]) -> None:
    differing = [i for i, (a, b) in enumerate(zip(ours, expected, strict=True)) if a != b]
    assert not differing, (
        f"{label}: {len(differing)} of {len(texts)} texts differ; first {texts[differing[0]]!r}: "
        f"native {ours[differing[0]]} vs tokenizers {expected[differing[0]]}"
    )


def check_native_ids(bundle: Path, texts: list[str], figure_log, label: str) -> None:
    """The native path's ids (a batch over two threads, and one text per call) equal tokenizers'."""
    assert native.available(), f"this test needs the native core: {native.unavailable_reason()}"
    manifest = read_manifest(bundle)
    assert manifest.core_tokenizer is not None and manifest.core_tokenizer.file is not None, (
        f"{label}: the export did not choose the native core: "
        f"{manifest.core_tokenizer.reason if manifest.core_tokenizer else 'no decision'}"
    )
    expected = tokenizers_ids(bundle, texts)
    tokenizer = open_tokenizer(bundle, manifest, path="native", threads=2)
    batch = tokenizer.tokenize(texts)
    ours = [batch.ids[start : start + n].tolist() for start, n in zip(batch.offsets, batch.lengths)]
    assert_same_ids(f"{label}, batch", texts, ours, expected)
    one = [list(tokenizer.tokenize_one(text)) for text in texts[:SINGLE_TEXTS]]
    assert_same_ids(f"{label}, one text per call", texts[:SINGLE_TEXTS], one, expected[:SINGLE_TEXTS])
    figure_log.record(
        f"native ids = tokenizers' on {platform.machine()}, {label}: {len(texts)} texts, {sum(map(len, expected)):,} tokens "
        f"(max_length {manifest.max_length})"
    )


def test_potion_exported_on_x86_64(x86_reference, figure_log) -> None:
    bundle = x86_reference.bundle
    texts = [*x86_reference.texts, *fuzzed_texts(400), *limit_texts(read_manifest(bundle).max_length)]
    check_native_ids(bundle, texts, figure_log, "potion-base-8M (WordPiece, x86-64 export)")


@pytest.mark.parametrize("spec_id", ["wp-f32-L1", "uni-f16-w-L2", "uni-f32-L2-nolimit"])
def test_tiny_models_exported_on_aarch64(tiny_models, figure_log, spec_id: str) -> None:
    bundle = tiny_models.bundle(spec_id)
    texts = [*fuzzed_texts(300), *limit_texts(read_manifest(bundle).max_length)]
    check_native_ids(bundle, texts, figure_log, f"tiny {spec_id} (aarch64 export)")


def test_unigram_behind_precompiled_exported_on_aarch64(tmp_path: Path, figure_log) -> None:
    from m2v_edge.export import export_model

    data = json.loads(build_tokenizer("unigram").to_str())
    data["normalizer"] = precompiled_spec(PRECOMPILED_RULES)
    tokenizer_json = json.dumps(data)
    size = Tokenizer.from_str(tokenizer_json).get_vocab_size()
    table = np.random.default_rng(16).standard_normal((size, 8)).astype(np.float32)
    config = {"model_type": "model2vec", "hidden_dim": 8, "normalize": True, "max_length": 16}
    folder = write_model2vec_folder(tmp_path / "model", tokenizer_json, {"embeddings": table}, config, layout=1)
    bundle = export_model(folder, tmp_path / "bundle", variants=("fp32",))
    rules = [*PRECOMPILED_RULES, *(f"{key}{key}x{key}" for key in PRECOMPILED_RULES)]
    texts = [*rules, *fuzzed_texts(300), *limit_texts(16)]
    check_native_ids(bundle, texts, figure_log, "tiny Unigram behind Precompiled + Metaspace (aarch64 export)")
