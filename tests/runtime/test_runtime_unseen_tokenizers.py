"""The runtime against model2vec 0.10 on tokenizer pipelines, model shapes and texts the other runtime tests do not build.

Every source model is written here with `tokenizers`, numpy and safetensors only (never with m2v-edge), then exported
with `export_model` and encoded with `EdgeEmbedder`. Expected vectors always come from model2vec's `StaticModel.encode`
and expected token ids from tokenizers' `encode_batch_fast` (no special tokens, truncation to `max_length`), never
from m2v-edge. Each case is checked with the ASCII fast path on and off (profile setting `ascii_fast_path`), on the
batch path and on the single-text path, and asserts whether the fast path was in use, so that a case meant for the
fast path cannot pass by falling back to tokenizers.

Covered here: every BertNormalizer flag combination; normalizer Sequences (NFD/Lowercase/StripAccents, with Replace),
Strip, Prepend, regex Replace, NFKC, no normalizer; pre-tokenizers WhitespaceSplit+Punctuation, Whitespace, Metaspace
(every prepend scheme), ByteLevel, Split, Digits; WordPiece with other continuing-subword prefixes, a 5-character word
limit, an unk token not named [UNK], no continuation pieces, no unk token in the vocabulary; added tokens with every
flag inside ASCII texts, in both cases; padding and truncation sections in tokenizer.json; byte-level BPE, BPE with
byte_fallback and ignore_merges, Unigram with byte_fallback, WordLevel; config max_length 1/4/8/null and texts at the
character cut and at the token limit; normalize null; float16 weights, uint16/int16 mappings, negative and zero
weights, raw int8 tables with weights; more than 1,024 texts over several chunks with a small token budget; the
tokenizers/fast-path race forced on.

"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.tiny_models import CORPUS, prefix_merges
from model2vec import StaticModel
from safetensors.numpy import save_file
from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers

import m2v_edge.runtime.tokens as tokens_module
from m2v_edge.device_profiles import load_profile
from m2v_edge.export import export_model
from m2v_edge.bundle import read_manifest
from m2v_edge.errors import BundleError
from m2v_edge.runtime import EdgeEmbedder, native
from m2v_edge.runtime.tokens import BundleTokenizer

SURROGATES = re.compile("[\ud800-\udfff]")
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# --- texts -----------------------------------------------------------------------------------------------------

_CONTROLS = [chr(c) for c in [*range(32), 127]]
TEXTS = [
    *CORPUS,
    *(f"the{c}quick {c}Fox{c}{c} x{c}" for c in _CONTROLS),
    "", " ", "   ", "\t\n\r", "\x0b\x0c", "\x1c\x1d\x1e\x1f",
    "[CLS]", "[cls]", "the[CLS]fox", "un[UNK]known [UNK]", "[MASK] the [PAD][SEP]", "[SEP", "CLS]", "<unk> <s> </s>",
    "a\x85b", "a\xa0b", "a\u2028b c\u2029d", "zero\u200bwidth\u200djoin", "e\u0301 cafe\u0301 café", "\ufeffbom",
    "中文 text 日本語", "😀 emoji 👍🏽", "שלום the fox مرحبا", "naïve Straße ÆØÅ ﬁ ① Ⅻ x²", "\ufffd replacement",
    "a" * 4, "a" * 5, "a" * 6, "quick" * 20, "x" * 100, "x" * 101, "Supercalifragilisticexpialidocious " * 3,
    "Hello, World! It's 3:45pm -- ok? (yes) [no] {maybe} <tag> 100% $5 #1 @me ^_^ ~ `q` | \\ / ;: \"q\"",
    "  leading and trailing  ", "UPPER lower MiXeD Case", "don't stop-believing e.g. i.e. U.S.A.",
    "##ing ##s @@ed xxfox", "tab\tseparated\tvalues\nand lines\r\n",
]


def reference_texts(texts: list[str]) -> list[str]:
    """What model2vec is given: it raises on lone surrogates, which m2v-edge reads as U+FFFD."""
    return [SURROGATES.sub("\ufffd", text) for text in texts]


# --- tokenizers built here -------------------------------------------------------------------------------------


def corpus_words() -> list[str]:
    words = sorted({w for line in CORPUS for w in re.findall(r"\w+", line)})
    return [*words, *(w.capitalize() for w in words[:40]), *(w.upper() for w in words[:10])]


def wordpiece(
    normalizer: Any = "bert",
    pre_tokenizer: Any = "bert",
    *,
    prefix: str = "##",
    max_chars: int = 100,
    unk: str = "[UNK]",
    unk_in_vocab: bool = True,
    continuation: bool = True,
    specials: bool = True,
) -> Tokenizer:
    """A small WordPiece tokenizer over the corpus words, every printable ASCII character and continuation pieces."""
    chars = [chr(c) for c in range(33, 127)] + list("éüßæø中文日本")
    pieces = [unk] if unk_in_vocab else []
    pieces += [*chars, *corpus_words(), "qu", "ick", "fo", "er", "the"]
    if continuation:
        pieces += [prefix + c for c in chars] + [prefix + s for s in ("s", "ing", "ed", "er", "ly", "ick", "ox")]
    vocab = {piece: index for index, piece in enumerate(dict.fromkeys(pieces))}
    tokenizer = Tokenizer(
        models.WordPiece(vocab=vocab, unk_token=unk, continuing_subword_prefix=prefix, max_input_chars_per_word=max_chars)
    )
    if normalizer == "bert":
        normalizer = normalizers.BertNormalizer()
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    if pre_tokenizer == "bert":
        pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    if pre_tokenizer is not None:
        tokenizer.pre_tokenizer = pre_tokenizer
    if specials:
        tokenizer.add_special_tokens([token for token in SPECIAL if token != "[UNK]" or unk == "[UNK]"])
    return tokenizer


def _seen_words(normalizer: Any, pre_tokenizer: Any) -> list[str]:
    words: dict[str, None] = {}
    for line in CORPUS:
        text = normalizer.normalize_str(line) if normalizer is not None else line
        words.update(dict.fromkeys(word for word, _ in pre_tokenizer.pre_tokenize_str(text)))
    return list(words)


def bpe(
    pre_tokenizer: Any, *, normalizer: Any = None, unk: str | None = "[UNK]", byte_fallback: bool = False,
    ignore_merges: bool = False, extra: tuple[str, ...] = (),
) -> Tokenizer:
    pieces, merges = prefix_merges(_seen_words(normalizer, pre_tokenizer)[:150])
    special = [unk] if unk else []
    if byte_fallback:
        special += [f"<0x{b:02X}>" for b in range(256)]
    vocab = {piece: index for index, piece in enumerate(dict.fromkeys([*special, *extra, *pieces]))}
    tokenizer = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token=unk, byte_fallback=byte_fallback, ignore_merges=ignore_merges)
    )
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    return tokenizer


def byte_level_bpe(add_prefix_space: bool) -> Tokenizer:
    pre = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    words = _seen_words(None, pre)[:150]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    pieces, merges = prefix_merges(words)
    vocab = {p: i for i, p in enumerate(dict.fromkeys([*sorted(alphabet), *pieces]))}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = pre
    tokenizer.add_special_tokens(["<|endoftext|>"])
    return tokenizer


def unigram(prepend_scheme: str = "always", *, byte_fallback: bool = False, normalizer: Any = None) -> Tokenizer:
    pre = pre_tokenizers.Metaspace(prepend_scheme=prepend_scheme)
    words = _seen_words(normalizer, pre)
    chars = sorted({c for w in words for c in w})
    scored = [("<unk>", 0.0), ("<pad>", 0.0), *((c, -8.0) for c in chars)]
    scored += [(w, -2.0 - 0.02 * rank) for rank, w in enumerate(words[:100]) if len(w) > 1]
    scored += [(w[:3], -5.0) for w in words[:100] if len(w) > 4]
    if byte_fallback:
        scored += [(f"<0x{b:02X}>", -20.0) for b in range(256)]
    tokenizer = Tokenizer(models.Unigram(list(dict(scored).items()), unk_id=0, byte_fallback=byte_fallback))
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre
    return tokenizer


def wordlevel() -> Tokenizer:
    pre = pre_tokenizers.Whitespace()
    words = _seen_words(normalizers.Lowercase(), pre)
    vocab = {w: i for i, w in enumerate(["[UNK]", *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizers.Lowercase(), pre
    return tokenizer


# --- model folders and the comparison ------------------------------------------------------------------------


def write_model(
    folder: Path,
    tokenizer: Tokenizer | str,
    config: dict[str, Any],
    *,
    dtype: Any = np.float32,
    dim: int = 8,
    weights: Any = None,
    mapping: Any = None,
    seed: int = 0,
) -> Path:
    """A Model2Vec folder in layout 1 (config.json, model.safetensors, tokenizer.json), with a seeded random table."""
    folder.mkdir(parents=True)
    text = tokenizer if isinstance(tokenizer, str) else tokenizer.to_str()
    vocab_size = len(Tokenizer.from_str(text).get_vocab())
    rng = np.random.default_rng(seed)
    rows = vocab_size if mapping is None else max(2, vocab_size // 2)
    if np.dtype(dtype) == np.int8:
        table = rng.integers(-127, 128, size=(rows, dim), dtype=np.int8)
    else:
        table = (rng.standard_normal((rows, dim)) * 0.5).astype(dtype)
    tensors = {"embeddings": table}
    if weights is not None:
        if isinstance(weights, type):  # a dtype
            tensors["weights"] = rng.uniform(0.1, 2, vocab_size).astype(weights)
        else:  # a function of (rng, vocab size)
            tensors["weights"] = weights(rng, vocab_size)
    if mapping is not None:
        tensors["mapping"] = rng.integers(0, rows, size=vocab_size).astype(mapping)
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_text(text, encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({"model_type": "model2vec", **config}), encoding="utf-8")
    return folder


def max_rel(out: np.ndarray, ref: np.ndarray) -> float:
    """Largest |out - ref| of a row divided by max(1, largest |ref| of the row), over all rows."""
    if not len(ref):
        return 0.0
    diff = np.abs(out.astype(np.float64) - ref)
    return float((diff / np.maximum(1.0, np.abs(ref).max(axis=1, keepdims=True))).max())


PATHS = ("native", "python", "tokenizers")


def check(
    folder: Path,
    texts: list[str],
    *,
    fast_path: bool | None,
    native_core: bool,
    tol: float = 1e-5,
    token_budget: int | None = None,
    single: int | None = None,
) -> EdgeEmbedder:
    """Export `folder`, encode `texts` on every tokenizing path (batch and one text per call) and compare with
    model2vec; compare each path's token ids with tokenizers'. `fast_path`: whether the Python path takes the ASCII
    fast path (None: any). `native_core`: whether the export must have chosen the native core (where the core is
    available here). `single`: how many texts to also encode one per call (default all). Returns the Python path's
    embedder."""
    reference = np.asarray(StaticModel.from_pretrained(folder).encode(reference_texts(texts)), dtype=np.float64)
    bundle = export_model(folder, folder.parent / f"{folder.name}-bundle", variants=("fp32",))
    decision = read_manifest(bundle).core_tokenizer
    expect_native = native_core and native.available()
    assert (decision.file is not None) == expect_native, decision.reason
    embedders = {}
    for path in PATHS:
        if path == "native" and not expect_native:
            with pytest.raises(BundleError, match="cannot use the native core"):
                EdgeEmbedder(bundle, variant="fp32", tokenizing="native")
            continue
        embedders[path] = EdgeEmbedder(bundle, variant="fp32", tokenizing=path, token_budget=token_budget)
        if path != "python":  # the python path is tokenizers itself where the fast path does not apply
            assert embedders[path].tokenizing == path
    if fast_path is not None:
        assert (embedders["python"]._tokenizer.fast_path is not None) == fast_path
    assert embedders["tokenizers"]._tokenizer.fast_path is None
    ref_zero = ~reference.any(axis=1)
    some = slice(None) if single is None else slice(0, single)
    for path, embedder in embedders.items():
        out = embedder.encode(texts)
        assert out.dtype == np.float32 and out.shape == reference.shape
        assert np.isfinite(out).all()
        assert np.array_equal(~out.any(axis=1), ref_zero), f"zero rows differ ({path})"
        assert max_rel(out, reference) <= tol, f"batch, {path}: {max_rel(out, reference)}"
        one = np.vstack([embedder.encode(text) for text in texts[some]]) if texts[some] else out[:0]
        assert max_rel(one, reference[some]) <= tol, f"one text per call, {path}"
    check_ids(bundle, texts[:400], [embedder._tokenizer for embedder in embedders.values()])
    return embedders["python"]


def check_ids(bundle: Path, texts: list[str], paths: list[Any]) -> None:
    """Each path's ids (batch and one text) equal tokenizers' on the texts as the embedder cuts them."""
    manifest = json.loads((bundle / "m2v_edge.json").read_text())
    max_length = manifest["max_length"]
    limit = None if max_length is None else max_length * manifest["median_token_length"]
    cut = reference_texts([text if limit is None else text[:limit] for text in texts])
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation() if max_length is None else tokenizer.enable_truncation(max_length)
    expected = [e.ids for e in tokenizer.encode_batch_fast(cut, add_special_tokens=False)]
    for ours in paths:
        batch = ours.tokenize(cut)
        assert [batch.ids[o : o + n].tolist() for o, n in zip(batch.offsets, batch.lengths)] == expected, ours
        assert [list(ours.tokenize_one(text)) for text in cut] == expected, ours


# --- WordPiece behind BertPreTokenizer: the fast path's pipelines ----------------------------------------------

BERT_FLAGS = list(itertools.product([True, False], [True, False], [None, True, False], [True, False]))


@pytest.mark.parametrize(
    ("clean_text", "handle_chinese_chars", "strip_accents", "lowercase"),
    BERT_FLAGS,
    ids=[f"clean{c:d}-cjk{h:d}-strip{s}-lower{lo:d}" for c, h, s, lo in BERT_FLAGS],
)
def test_every_bert_normalizer_setting(tmp_path, clean_text, handle_chinese_chars, strip_accents, lowercase) -> None:
    normalizer = normalizers.BertNormalizer(
        clean_text=clean_text, handle_chinese_chars=handle_chinese_chars, strip_accents=strip_accents,
        lowercase=lowercase,
    )
    folder = write_model(tmp_path / "m", wordpiece(normalizer), {"normalize": True, "max_length": 16})
    check(folder, TEXTS, fast_path=True, native_core=True, single=60)


FAST_PIPELINES = {
    "nfd-lowercase-stripaccents": lambda: wordpiece(
        normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()])),
    "nfkc": lambda: wordpiece(normalizers.NFKC()),
    "lowercase": lambda: wordpiece(normalizers.Lowercase()),
    "no-normalizer": lambda: wordpiece(None),
    "empty-sequence": lambda: wordpiece(normalizers.Sequence([])),
    "bert-then-lowercase-uncleaned": lambda: wordpiece(
        normalizers.Sequence([normalizers.BertNormalizer(clean_text=False, lowercase=False), normalizers.Lowercase()])),
    "prefix-@@": lambda: wordpiece(prefix="@@"),
    "prefix-xx-alphanumeric": lambda: wordpiece(prefix="xx"),
    "prefix-empty": lambda: wordpiece(prefix=""),
    "prefix-non-ascii": lambda: wordpiece(prefix="\xff#"),
    "max-5-chars": lambda: wordpiece(max_chars=5),
    "max-1-char": lambda: wordpiece(max_chars=1),
    "unk-named-<unk>": lambda: wordpiece(unk="<unk>"),
    "no-continuation-pieces": lambda: wordpiece(continuation=False),
    "no-added-tokens": lambda: wordpiece(specials=False),
}


@pytest.mark.parametrize("case", sorted(FAST_PIPELINES))
def test_fast_path_pipelines(tmp_path, case) -> None:
    folder = write_model(tmp_path / "m", FAST_PIPELINES[case](), {"normalize": False, "max_length": 12})
    check(folder, TEXTS, fast_path=True, native_core=True, single=60)


OTHER_PIPELINES = {
    "bert+replace": lambda: wordpiece(normalizers.Sequence([normalizers.BertNormalizer(), normalizers.Replace("``", '"')])),
    "strip": lambda: wordpiece(normalizers.Strip()),
    "prepend": lambda: wordpiece(normalizers.Prepend("x")),
    "regex-replace": lambda: wordpiece(
        normalizers.Sequence([normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])),
    "whitespacesplit+punctuation": lambda: wordpiece(
        pre_tokenizer=pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])),
    "whitespace": lambda: wordpiece(pre_tokenizer=pre_tokenizers.Whitespace()),
    "metaspace": lambda: wordpiece(pre_tokenizer=pre_tokenizers.Metaspace()),
    "bytelevel-pre": lambda: wordpiece(pre_tokenizer=pre_tokenizers.ByteLevel(add_prefix_space=False)),
    "sequence-of-bert": lambda: wordpiece(pre_tokenizer=pre_tokenizers.Sequence([pre_tokenizers.BertPreTokenizer()])),
    "bert+digits": lambda: wordpiece(pre_tokenizer=pre_tokenizers.Sequence(
        [pre_tokenizers.BertPreTokenizer(), pre_tokenizers.Digits(individual_digits=True)])),
    "no-pre-tokenizer": lambda: wordpiece(pre_tokenizer=None),
    "bytelevel-bpe-prefix-space": lambda: byte_level_bpe(True),
    "bytelevel-bpe-no-prefix-space": lambda: byte_level_bpe(False),
    "bpe-byte-fallback": lambda: bpe(pre_tokenizers.Metaspace(), unk="<unk>", byte_fallback=True),
    "bpe-ignore-merges": lambda: bpe(pre_tokenizers.Whitespace(), ignore_merges=True, extra=("quick", "brown")),
    "bpe-split-regex": lambda: bpe(pre_tokenizers.Split(Regex(r"\w+|[^\w\s]+"), behavior="isolated")),
    "bpe-no-unk-nfkc": lambda: bpe(pre_tokenizers.WhitespaceSplit(), normalizer=normalizers.NFKC(), unk=None),
    "unigram-first": lambda: unigram("first"),
    "unigram-never": lambda: unigram("never", normalizer=normalizers.NFKC()),
    "unigram-byte-fallback": lambda: unigram(byte_fallback=True),
    "wordlevel": wordlevel,
}


NOT_NATIVE = {
    "regex-replace", "bytelevel-pre", "bytelevel-bpe-prefix-space", "bytelevel-bpe-no-prefix-space",
    "bpe-byte-fallback", "bpe-ignore-merges", "bpe-split-regex", "bpe-no-unk-nfkc", "unigram-first", "wordlevel",
}
"""The pipelines the native core does not reproduce (regular expressions, byte-level, BPE, WordLevel, Metaspace's
"first" scheme): their bundles tokenize through tokenizers."""


@pytest.mark.parametrize("case", sorted(OTHER_PIPELINES))
def test_other_pipelines_through_tokenizers(tmp_path, case) -> None:
    folder = write_model(tmp_path / "m", OTHER_PIPELINES[case](), {"normalize": True, "max_length": 12})
    check(folder, [*TEXTS, "<|endoftext|>", "a<|endoftext|>b", "<0x41>"], fast_path=False,
          native_core=case not in NOT_NATIVE, single=60)


def test_unk_token_missing_from_the_vocabulary(tmp_path) -> None:
    """tokenizers fails on an unknown word when WordPiece's unk token is not in the vocabulary; model2vec raises, so
    m2v-edge must raise too, not return a vector; texts of known words match."""
    folder = write_model(tmp_path / "m", wordpiece(unk_in_vocab=False), {"normalize": True})
    embedder = check(folder, ["the quick fox", "a fast web server", ""], fast_path=False, native_core=False)
    with pytest.raises(Exception, match="UNK|unk|[Uu]nknown"):
        StaticModel.from_pretrained(folder).encode(["the ☃ fox"])
    with pytest.raises(Exception, match="UNK|unk|[Uu]nknown"):
        embedder.encode(["the ☃ fox", "the fox"])
    with pytest.raises(Exception, match="UNK|unk|[Uu]nknown"):
        embedder.encode("the ☃ fox")


# --- added tokens inside ASCII texts -----------------------------------------------------------------------------

ADDED = [
    AddedToken("Quick Fox", normalized=True),
    AddedToken("RAW.thing", normalized=False),
    AddedToken("lazy", single_word=True, normalized=True),
    AddedToken("<Sep>", special=True, normalized=True),
    AddedToken("<tag>", special=True, normalized=False, lstrip=True, rstrip=True),
    AddedToken("dog", normalized=False, single_word=True, lstrip=True),
    AddedToken("éte", normalized=True),
    AddedToken("x\ty", normalized=True),
    AddedToken("a\x00b", normalized=True),
]
ADDED_TEXTS = [
    "the quick fox", "the QUICK FOX jumps", "quick\tfox", "Quick  Fox", "RAW.thing here", "raw.thing here",
    "RAW.THING", "the lazy dog", "lazydog", "the lazy, dog.", "<sep>", "<SEP>", "a<Sep>b", "a <tag> b", "a<tag>b",
    "<TAG>", "hotdog dog dogs", "ete", "x y", "x\ty", "ab", "a\x00b", "a\x01b", "[cls]", "x[CLS]y", "plain text",
]


@pytest.mark.parametrize("lowercase", [True, False])
@pytest.mark.parametrize("clean_text", [True, False])
def test_added_tokens_of_every_kind(tmp_path, lowercase, clean_text) -> None:
    tokenizer = wordpiece(normalizers.BertNormalizer(clean_text=clean_text, lowercase=lowercase))
    tokenizer.add_tokens(ADDED)
    folder = write_model(tmp_path / "m", tokenizer, {"normalize": True, "max_length": 8})
    embedder = check(folder, [*ADDED_TEXTS, *TEXTS[:40]], fast_path=True, native_core=True)
    taken, _ = embedder._tokenizer.fast_path.partition(ADDED_TEXTS)
    assert ADDED_TEXTS.index("plain text") in taken  # the fast path still takes texts without added tokens


def test_padding_and_truncation_sections_are_ignored(tmp_path) -> None:
    """A tokenizer.json with fixed padding, a pad multiple and left truncation to 3 tokens: model2vec ignores all."""
    spec = json.loads(wordpiece().to_str())
    spec["padding"] = {"strategy": {"Fixed": 32}, "direction": "Left", "pad_to_multiple_of": 8, "pad_id": 0,
                       "pad_type_id": 1, "pad_token": "[PAD]"}
    spec["truncation"] = {"direction": "Left", "max_length": 3, "strategy": "OnlySecond", "stride": 1}
    folder = write_model(tmp_path / "m", json.dumps(spec), {"normalize": False, "max_length": 6})
    check(folder, TEXTS, fast_path=True, native_core=True, single=60)


# --- model configs, tensors, lengths --------------------------------------------------------------------------


def _boundary_texts(max_length: int | None, median: int) -> list[str]:
    """Texts one character around the character cut, and with max_length - 1, max_length, + 1 tokens."""
    limit = (max_length or 512) * median
    base = "quick brown fox, jumps over the lazy dog! " * 400
    texts = []
    for n in range(limit - 2, limit + 3):
        texts += [base[:n], ("é" + base)[:n], base[: n - 1] + "é", base[: n - 1] + "[CLS]"]
    words = "the quick brown fox jumps over the lazy dog and the cat".split()
    for k in {max(1, (max_length or 8) - 1), max_length or 8, (max_length or 8) + 1}:
        texts += [" ".join(words[:k]), " ".join(words[:k]) + " ☃", "☃ " + " ".join(words[:k])]
    return texts


@pytest.mark.parametrize("max_length", [1, 4, 8, None])
def test_character_cut_and_token_limit(tmp_path, max_length) -> None:
    folder = write_model(tmp_path / "m", wordpiece(), {"normalize": True, "max_length": max_length},
                         weights=np.float32, mapping=np.int64)
    median = StaticModel.from_pretrained(folder).median_token_length
    check(folder, [*_boundary_texts(max_length, median), *TEXTS], fast_path=True, native_core=True, single=80)


TENSOR_CASES = {
    "normalize-null": dict(config={"normalize": None}),
    "normalize-absent-float64-mapping-uint16": dict(config={}, dtype=np.float64, mapping=np.uint16, weights=np.float64),
    "weights-float16": dict(config={"normalize": False}, weights=np.float16),
    "mapping-int16": dict(config={"normalize": True}, mapping=np.int16),
    "negative-weights": dict(config={"normalize": True},
                             weights=lambda rng, n: rng.uniform(-1, 1, n).astype(np.float32)),
    "zero-weights": dict(config={"normalize": True}, weights=lambda rng, n: np.zeros(n, np.float32)),
    "int8-raw-weights": dict(config={"normalize": False}, dtype=np.int8, weights=np.float32),
    "dim-1": dict(config={"normalize": True}, dim=1),
}


@pytest.mark.parametrize("case", sorted(TENSOR_CASES))
def test_tensor_and_config_shapes(tmp_path, case) -> None:
    options = dict(TENSOR_CASES[case])
    config = options.pop("config")
    folder = write_model(tmp_path / "m", wordpiece(), {**config, "max_length": 16}, **options)
    check(folder, TEXTS, fast_path=True, native_core=True, single=40)


def test_many_texts_over_several_chunks(tmp_path) -> None:
    """2,600 texts (empty, long, non-ASCII, with added tokens, repeated) in chunks of a 64-token budget."""
    folder = write_model(tmp_path / "m", wordpiece(), {"normalize": False, "max_length": 40}, weights=np.float32)
    rng = np.random.default_rng(5)
    pool = [*TEXTS, *CORPUS, " ".join(CORPUS), "", "", "x" * 3000]
    texts = [pool[int(i)] for i in rng.integers(0, len(pool), size=2600)]
    texts += [TEXTS[0]] * 30
    check(folder, texts, fast_path=True, native_core=True, token_budget=64, single=0)


def test_the_tokenizers_race_forced_on(tmp_path, monkeypatch) -> None:
    """With 3+ CPUs large ASCII chunks alternate between the fast path and tokenizers: same vectors either way."""
    monkeypatch.setattr(tokens_module, "RACE_MIN_CPUS", 1)
    folder = write_model(tmp_path / "m", wordpiece(), {"normalize": True, "max_length": 64})
    texts = [" ".join(CORPUS[i % len(CORPUS) :] + CORPUS[: i % len(CORPUS)])[: 300 + i % 200] for i in range(3000)]
    embedder = check(folder, texts, fast_path=True, native_core=True, single=0)
    rates = embedder._tokenizer.path_choice.rates()
    assert rates["fast"] > 0 and rates["tokenizers"] > 0  # both paths really ran


# --- config values and tokenizers that once misbehaved --------------------------------------------------------


def test_max_length_zero_is_refused_at_export(tmp_path) -> None:
    """model2vec would cut every text to 0 characters (all-zero vectors): export refuses the config, naming it."""
    from m2v_edge.errors import SourceModelError

    folder = write_model(tmp_path / "m", wordpiece(), {"normalize": True, "max_length": 0})
    with pytest.raises(SourceModelError, match="max_length"):
        export_model(folder, tmp_path / "bundle", variants=("fp32",))


def test_many_added_tokens_keep_the_fast_path(tmp_path) -> None:
    """2,500 normalised multi-word added tokens, as model2vec's distill writes for a custom vocabulary: the fast path
    still takes the texts that hold none of them, with model2vec's vectors. (The scan for them was one regex
    alternation, 9x slower than tokenizers at 1,000 tokens; see `_finder` and `make bench` for speed.)"""
    tokenizer = wordpiece()
    words = corpus_words()
    rng = np.random.default_rng(0)
    multi = sorted({f"{words[int(a)]} {words[int(b)]}".lower() for a, b in rng.integers(0, len(words), (2500, 2))})
    tokenizer.add_tokens([AddedToken(content, normalized=True) for content in multi])
    folder = write_model(tmp_path / "m", tokenizer, {"normalize": True})
    texts = [line + " " + CORPUS[(i * 7) % len(CORPUS)] for i, line in enumerate(CORPUS * 40)]
    check(folder, texts[:200] + multi[:20], fast_path=True, native_core=True, single=20)
