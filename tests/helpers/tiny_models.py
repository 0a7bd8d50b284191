"""Tiny Model2Vec models, built from scratch with `tokenizers` and numpy, in every shape model2vec reads.

The models are written without m2v_edge, the way model2vec (or sentence-transformers) writes them, so the
tests compare m2v-edge against model2vec on inputs m2v-edge had no hand in. Only `TinyModels.bundle` calls
m2v-edge's exporter, and `measure` compares its vectors with model2vec's.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "the package manager installs and removes software on debian systems",
    "a small library for parsing command line options in python",
    "the kernel module provides support for wireless network cards",
    "documentation and examples for the graphics toolkit",
    "this package contains the shared library and the development headers",
    "a fast and lightweight web server with support for the proxy protocol",
    "utilities to read and write compressed archives",
    "the the the fox and the dog are friends of the cat",
    "transitional dummy package which can be safely removed",
    "fonts for the latin greek and cyrillic alphabets",
    "a text editor for the terminal with syntax highlighting",
    "tools for monitoring the temperature of hard drives",
    "an embedded database engine with a simple query language",
    "the quick test suite runs in less than a minute",
    "speech synthesis for english and other languages",
    "a daemon that keeps the system clock in sync with time servers",
    "bindings for the image processing library",
    "plugins for the media player to play music and video",
    "the configuration files are stored in the home directory",
    "café naïve résumé über straße",
    "numbers 0 1 2 3 42 1024 and symbols like + - = / are here too",
    "Upper Case Words Mixed With lower case words",
]

ALL_VARIANTS = ("fp32", "fp16", "int8")
"""The variants of the shared bundles (`TinyModels.bundle`, the `potion_bundle` fixture)."""
PARITY_VARIANTS = (*ALL_VARIANTS, "int4")
"""Every variant checked against model2vec; int4 comes from separate bundles (`TinyModels.int4_bundle`, the
`potion_int4_bundle` fixture) so that the shared bundles keep their three files."""
TOKENIZER_KINDS = ("wordpiece", "bpe_unk", "bpe_nounk", "unigram")
ZERO_WORD = "the"
"""A word whose tokens' table rows are set to zero: a text of only this word has a zero mean (an edge case)."""

SURROGATES = re.compile("[\ud800-\udfff]")
ABSENT: Any = "absent"
"""Marks a config key that is not written at all (model2vec then uses its default)."""


def _words(normalizer: Any, pre_tokenizer: Any) -> list[str]:
    """The corpus's words as the tokenizer sees them, most frequent first (ties alphabetical)."""
    counts: Counter[str] = Counter()
    for line in CORPUS:
        text = normalizer.normalize_str(line) if normalizer is not None else line
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(text))
    return sorted(counts, key=lambda word: (-counts[word], word))


def prefix_merges(words: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """A BPE vocabulary and merges that build each word left to right (deterministic, unlike the trainers)."""
    vocab = sorted({char for word in words for char in word})
    merges: list[tuple[str, str]] = []
    for word in words:
        for i in range(1, len(word)):
            if word[: i + 1] not in vocab:
                merges.append((word[:i], word[i]))
                vocab.append(word[: i + 1])
    return vocab, merges


def build_tokenizer(kind: str) -> Tokenizer:
    """A small tokenizer of one of the four kinds, its vocabulary constructed from `CORPUS`.

    The vocabularies are built directly rather than with the `tokenizers` trainers, whose results vary between
    processes (hash-map order decides ties): every run checks the same models.
    """
    if kind == "wordpiece":
        normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
        words = _words(normalizer, pre_tokenizer)
        chars = sorted({char for word in words for char in word})
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        suffixes = ["##s", "##ed", "##ing", "##er", "##ly", "##es", "##tion"]
        pieces = [*special, *chars, *(f"##{c}" for c in chars), *suffixes, *(w for w in words[:150] if len(w) > 1)]
        vocab = {piece: index for index, piece in enumerate(dict.fromkeys(pieces))}
        tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
        tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
        tok.add_special_tokens(special)
        # A real BERT tokenizer carries a post-processor, padding and truncation: model2vec ignores all three
        # (add_special_tokens=False, padding disabled, truncation reset to max_length) and so must m2v-edge.
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
        )
        tok.enable_padding(pad_id=vocab["[PAD]"], pad_token="[PAD]", length=16)
        tok.enable_truncation(max_length=5)
    elif kind in ("bpe_unk", "bpe_nounk"):
        if kind == "bpe_unk":
            normalizer, pre_tokenizer, special = normalizers.NFKC(), pre_tokenizers.Whitespace(), ["[UNK]", "[PAD]"]
        else:
            normalizer, pre_tokenizer, special = None, pre_tokenizers.Metaspace(), ["<pad>"]
        pieces, merges = prefix_merges(_words(normalizer, pre_tokenizer)[:120])
        vocab = {piece: index for index, piece in enumerate(dict.fromkeys([*special, *pieces]))}
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="[UNK]" if kind == "bpe_unk" else None))
        if normalizer is not None:
            tok.normalizer = normalizer
        tok.pre_tokenizer = pre_tokenizer
    elif kind == "unigram":
        pre_tokenizer = pre_tokenizers.Metaspace()
        words = _words(None, pre_tokenizer)
        chars = sorted({char for word in words for char in word})
        scored = [("<unk>", 0.0), ("<pad>", 0.0), *((c, -8.0) for c in chars)]
        scored += [(w, -2.0 - 0.02 * rank) for rank, w in enumerate(words[:100]) if len(w) > 1]
        scored += [(w[:3], -5.0) for w in words[:100] if len(w) > 4]
        tok = Tokenizer(models.Unigram(list(dict(scored).items()), unk_id=0, byte_fallback=False))
        tok.pre_tokenizer = pre_tokenizer
    else:
        raise ValueError(kind)
    return tok


@dataclass(frozen=True)
class TinySpec:
    """One tiny model: tokenizer kind, table dtype, folder layout, config and optional tensors."""

    id: str
    tokenizer: str
    dtype: str
    layout: int
    normalize: bool | None | str = ABSENT
    max_length: int | None | str = ABSENT
    weights: str | None = None
    mapping: str | None = None
    dim: int = 16
    licence: bool = False


# A covering set rather than the full product: every tokenizer meets every dtype, every layout and
# every weights/mapping shape, normalize true/false/absent and max_length absent/8/null each appear often.
TINY_SPECS = (
    TinySpec("wp-f32-L1", "wordpiece", "float32", 1, normalize=True, licence=True),
    TinySpec("wp-f16-w-L2", "wordpiece", "float16", 2, normalize=False, max_length=8, weights="float32"),
    TinySpec("wp-f64-m32w-L3", "wordpiece", "float64", 3, weights="float32", mapping="int32", dim=24),
    TinySpec("wp-i8-m64-L1", "wordpiece", "int8", 1, normalize=True, max_length=8, mapping="int64"),
    TinySpec("wp-i8-L2-raw", "wordpiece", "int8", 2, normalize=False),
    TinySpec("wp-f32-w64-nolimit", "wordpiece", "float32", 1, normalize=False, max_length=None, weights="float64"),
    TinySpec("bpeunk-f32-w-L3", "bpe_unk", "float32", 3, normalize=True, max_length=8, weights="float32"),
    TinySpec("bpeunk-f16-m64w-L1", "bpe_unk", "float16", 1, normalize=False, mapping="int64", weights="float32"),
    TinySpec("bpeunk-f64-L2", "bpe_unk", "float64", 2, normalize=True, licence=True),
    TinySpec("bpeunk-i8-w-L1", "bpe_unk", "int8", 1, max_length=8, weights="float32"),
    TinySpec("bpenounk-f32-m32-L2", "bpe_nounk", "float32", 2, normalize=False, max_length=8, mapping="int32"),
    TinySpec("bpenounk-f16-L3", "bpe_nounk", "float16", 3, normalize=True),
    TinySpec("bpenounk-i8-m32w-L3", "bpe_nounk", "int8", 3, normalize=True, mapping="int32", weights="float32"),
    TinySpec("bpenounk-f64-w-L1", "bpe_nounk", "float64", 1, normalize=False, max_length=8, weights="float32"),
    TinySpec("uni-f32-m64w-L1", "unigram", "float32", 1, normalize=False, mapping="int64", weights="float32"),
    TinySpec("uni-f16-w-L2", "unigram", "float16", 2, normalize=True, max_length=8, weights="float32"),
    TinySpec("uni-f64-m32w-L1", "unigram", "float64", 1, max_length=8, mapping="int32", weights="float32"),
    TinySpec("uni-i8-L3", "unigram", "int8", 3, normalize=False, max_length=8),
    TinySpec("uni-f32-L2-nolimit", "unigram", "float32", 2, normalize=True, max_length=None, dim=8),
)
SPECS_BY_ID = {spec.id: spec for spec in TINY_SPECS}


def _seed(text: str) -> int:
    return zlib.crc32(text.encode())


def make_tensors(spec: TinySpec, tokenizer: Tokenizer) -> dict[str, np.ndarray]:
    """The seeded random table (plus weights/mapping) for a spec, under model2vec's tensor names for layout 1."""
    rng = np.random.default_rng(_seed(spec.id))
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    rows = vocab if spec.mapping is None else max(4, vocab // 3)
    if spec.dtype == "int8":
        table = rng.integers(-127, 128, size=(rows, spec.dim), dtype=np.int8)
    else:
        table = (rng.standard_normal((rows, spec.dim)) * 0.5).astype(spec.dtype)
    tensors: dict[str, np.ndarray] = {}
    mapping = None
    if spec.mapping is not None:
        mapping = rng.integers(0, rows, size=vocab).astype(spec.mapping)
        mapping[: min(rows, vocab)] = np.arange(min(rows, vocab))  # every row is used at least once
        rng.shuffle(mapping)
        tensors["mapping"] = mapping
    if spec.weights is not None:
        tensors["weights"] = rng.uniform(0.05, 2.0, size=vocab).astype(spec.weights)
    plain = Tokenizer.from_str(tokenizer.to_str())
    plain.no_padding()
    zero_ids = plain.encode(ZERO_WORD, add_special_tokens=False).ids
    assert zero_ids, f"{ZERO_WORD!r} must give tokens with {spec.tokenizer}"
    table[zero_ids if mapping is None else mapping[zero_ids]] = 0
    tensors["embeddings"] = table
    return tensors


def write_model2vec_folder(
    folder: Path,
    tokenizer_json: str,
    tensors: dict[str, np.ndarray],
    config: dict[str, Any],
    *,
    layout: int,
    licence: str | None = None,
) -> Path:
    """Write a Model2Vec folder in layout 1, 2 or 3 (the table is `tensors['embeddings']`)."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = dict(tensors)
    if layout == 1:
        config_name, inner = "config.json", folder
    elif layout in (2, 3):
        config_name = "config_sentence_transformers.json"
        inner = folder if layout == 2 else folder / "0_StaticEmbedding"
        if "embeddings" in tensors:
            tensors["embedding.weight"] = tensors.pop("embeddings")
    else:
        raise ValueError(layout)
    inner.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(inner / "model.safetensors"))
    (inner / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    (folder / config_name).write_text(json.dumps(config), encoding="utf-8")
    if licence is not None:
        (folder / "LICENSE").write_text(licence, encoding="utf-8")
    return folder


def spec_config(spec: TinySpec) -> dict[str, Any]:
    config: dict[str, Any] = {"model_type": "model2vec", "hidden_dim": spec.dim}
    if spec.normalize is not ABSENT:
        config["normalize"] = spec.normalize
    if spec.max_length is not ABSENT:
        config["max_length"] = spec.max_length
    return config


def build_tiny_model(spec: TinySpec, folder: Path, tokenizers: dict[str, Tokenizer]) -> Path:
    """Write the model described by `spec` into `folder`."""
    tokenizer = tokenizers[spec.tokenizer]
    licence = f"MIT licence of the tiny test model {spec.id}\n" if spec.licence else None
    return write_model2vec_folder(
        folder,
        tokenizer.to_str(),
        make_tensors(spec, tokenizer),
        spec_config(spec),
        layout=spec.layout,
        licence=licence,
    )


# --- texts ---------------------------------------------------------------------------------------------------

TEN_MB = ("the quick brown fox jumps over the lazy dog. " * 230_000)[:10_000_000]

EDGE_TEXTS = {
    "empty": "",
    "space": " ",
    "whitespace": " \t\n\r\u00a0\u2003 ",
    "nul": "\x00",
    "nuls_inside": "quick\x00brown\x00\x00fox",
    "unk_only": "☃☃ ☃ ☃",
    "lone_high_surrogate": "\ud800",
    "lone_surrogates_inside": "quick \udfff brown \ud83d fox \udc00",
    "surrogate_pair_as_two": "fox \ud83d\ude00 dog",
    "emoji": "😀🎉 the fox 🦊👍🏽 👨‍👩‍👧",
    "cjk": "中文字符测试 日本語のテキスト 한국어 텍스트",
    "rtl": "שלום עולם مرحبا بالعالم the fox",
    "combining": "e\u0301 a\u0308 straße ﬁ Ⅻ",
    "control": "\x01\x02\x1b[31mred\x1b[0m\x7f",
    "zero_word": f"{ZERO_WORD} {ZERO_WORD}  {ZERO_WORD}",
    "one_token": "fox",
    "long": " ".join(CORPUS * 4),
    "long_no_spaces": "abcdefghij" * 3000,
    "ten_mb": TEN_MB,
}
"""Edge cases shared by the tiny models and potion-base-8M, by name."""


UNTRUNCATED_CAP = 1_000


def word_salads(count: int, seed: int = 7) -> list[str]:
    """Seeded random texts of 1 to 60 corpus words (many longer than a max_length of 8 tokens)."""
    rng = np.random.default_rng(seed)
    words = " ".join(CORPUS).split() + ["xyzzy", "Quux!", "42", "zürich", "東京", "🦊"]
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 61)))) for _ in range(count)]


def tiny_texts(spec: TinySpec) -> list[str]:
    """The texts a tiny model is checked on: corpus, word salads and every edge case.

    A model without truncation (`max_length: null`) tokenises whole texts; for it every text is cut to
    1,000 characters (at most 1,000 tokens, the scale a model truncating at 512 tokens sees). Beyond some
    thousands of tokens the order of float32 additions shows (model2vec's own float32 mean drifts 1e-4 from the
    exact mean at 40,000 tokens): `test_fp32_on_untruncated_very_long_text` covers that case on its own.
    """
    texts = [*CORPUS, *word_salads(150), *EDGE_TEXTS.values()]
    if spec.max_length is None:
        texts = [text[:UNTRUNCATED_CAP] for text in texts]
    return texts


def for_model2vec(text: str) -> str:
    """The text model2vec is given as reference for `text`.

    model2vec 0.10 (tokenizers) raises TypeError on strings with lone surrogates, so it has no vector for them.
    m2v-edge encodes them as if each lone surrogate were U+FFFD (one code point for one, so the character
    pre-truncation is unchanged); every other text is passed as is.
    """
    return SURROGATES.sub("\ufffd", text)


def model2vec_reference(folder: Path, texts: list[str]) -> np.ndarray:
    """model2vec 0.10's vectors for `texts` (lone surrogates replaced, see `for_model2vec`), as float64."""
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(folder)
    return np.asarray(model.encode([for_model2vec(t) for t in texts]), dtype=np.float64)


class TinyModels:
    """Builds, exports and encodes (with model2vec) the tiny models on first use, once per session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tokenizers = {kind: build_tokenizer(kind) for kind in TOKENIZER_KINDS}
        self._folders: dict[str, Path] = {}
        self._bundles: dict[str, Path] = {}
        self._int4_bundles: dict[str, Path] = {}
        self._references: dict[str, tuple[list[str], np.ndarray]] = {}

    def spec(self, spec_id: str) -> TinySpec:
        return SPECS_BY_ID[spec_id]

    def folder(self, spec_id: str) -> Path:
        """The Model2Vec source folder (read-only: copy it before changing anything)."""
        if spec_id not in self._folders:
            self._folders[spec_id] = build_tiny_model(self.spec(spec_id), self.root / "src" / spec_id, self._tokenizers)
        return self._folders[spec_id]

    def bundle(self, spec_id: str) -> Path:
        """The m2v-edge bundle with all three variants (read-only: copy it before changing anything)."""
        if spec_id not in self._bundles:
            from m2v_edge.export import export_model

            self._bundles[spec_id] = export_model(
                self.folder(spec_id), self.root / "bundles" / spec_id, variants=ALL_VARIANTS
            )
        return self._bundles[spec_id]

    def int4_bundle(self, spec_id: str) -> Path:
        """A bundle with only the int4 variant (read-only)."""
        if spec_id not in self._int4_bundles:
            from m2v_edge.export import export_model

            self._int4_bundles[spec_id] = export_model(
                self.folder(spec_id), self.root / "bundles-int4" / spec_id, variants=("int4",)
            )
        return self._int4_bundles[spec_id]

    def bundle_with(self, spec_id: str, variant: str) -> Path:
        """The bundle that holds `variant`: `bundle` for fp32, fp16 and int8, `int4_bundle` for int4."""
        return self.int4_bundle(spec_id) if variant == "int4" else self.bundle(spec_id)

    def reference(self, spec_id: str) -> tuple[list[str], np.ndarray]:
        """The texts the model is checked on, and model2vec's vectors for them."""
        if spec_id not in self._references:
            texts = tiny_texts(self.spec(spec_id))
            self._references[spec_id] = (texts, model2vec_reference(self.folder(spec_id), texts))
        return self._references[spec_id]


# --- measuring ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """How close a [n, dim] output is to model2vec's reference."""

    n: int
    zero_rows: int
    """Rows model2vec gives as exactly zero."""
    zero_mismatches: tuple[int, ...]
    """Indices where exactly one of reference and output is all-zero (must be empty)."""
    min_cos: float
    mean_cos: float
    max_abs: float
    max_rel: float
    """max |out - ref| per row divided by max(1, max |ref| of the row)."""
    finite: bool

    def line(self, label: str) -> str:
        return (
            f"{label}: n={self.n} zero_rows={self.zero_rows} min_cos={self.min_cos:.9f} "
            f"mean_cos={self.mean_cos:.9f} max_abs_diff={self.max_abs:.3e}"
        )


def measure(out: np.ndarray, ref: np.ndarray) -> Figures:
    """Compare an m2v-edge output with model2vec's reference, row by row, in float64."""
    assert out.shape == ref.shape, (out.shape, ref.shape)
    o = out.astype(np.float64)
    r = ref.astype(np.float64)
    ref_zero = ~np.any(r != 0, axis=1)
    out_zero = ~np.any(o != 0, axis=1)
    mismatches = tuple(int(i) for i in np.flatnonzero(ref_zero != out_zero))
    nz = ~ref_zero
    on, rn = np.linalg.norm(o[nz], axis=1), np.linalg.norm(r[nz], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(on > 0, (o[nz] * r[nz]).sum(1) / (on * rn), 0.0)
    diff = np.abs(o - r)
    scale = np.maximum(1.0, np.abs(r).max(axis=1, keepdims=True)) if len(r) else 1.0
    return Figures(
        n=len(out),
        zero_rows=int(ref_zero.sum()),
        zero_mismatches=mismatches,
        min_cos=float(cos.min()) if cos.size else 1.0,
        mean_cos=float(cos.mean()) if cos.size else 1.0,
        max_abs=float(diff.max()) if diff.size else 0.0,
        max_rel=float((diff / scale).max()) if diff.size else 0.0,
        finite=bool(np.isfinite(out).all()),
    )


# --- the Hugging Face cache -------------------------------------------------------------------------------------


def populate_hub_cache(cache_dir: Path, repo_id: str, folder: Path, commit: str) -> Path:
    """Lay `folder` out in `cache_dir` the way huggingface_hub stores a download of `repo_id` at `commit`:
    `models--org--name/blobs/<sha256>`, `snapshots/<commit>/<path>` symlinks to the blobs, `refs/main`."""
    repo_dir = cache_dir / f"models--{repo_id.replace('/', '--')}"
    blobs, snapshot = repo_dir / "blobs", repo_dir / "snapshots" / commit
    blobs.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = blobs / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(*[".."] * (len(link.relative_to(repo_dir).parts) - 1), "blobs", blob.name))
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot
