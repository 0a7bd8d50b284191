"""The ASCII fast path (`m2v_edge.runtime.ascii_wordpiece`) gives tokenizers' ids, exactly.

Every comparison is with tokenizers itself (`encode_batch_fast`, no special tokens, truncation to `max_length`), the
library model2vec tokenises with, on: every ASCII character in several contexts, fuzzed ASCII texts and batches
(hypothesis), long words, added tokens, batches mixing ASCII and non-ASCII texts, a tiny word cache, the real
potion-base-8M tokenizer on the 16,000 Debian texts; and for each BertNormalizer setting (clean_text, lowercase),
`Sequence` normalizers, other continuing-subword prefixes and word limits. Each test also checks that the texts were
really taken by the fast path, so that a test cannot pass by falling back to tokenizers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.tiny_models import CORPUS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers

import m2v_edge.runtime.ascii_wordpiece as ascii_wordpiece
import m2v_edge.runtime.tokens as tokens_module
from m2v_edge.runtime.ascii_wordpiece import AsciiWordPiece
from m2v_edge.runtime.tokens import BundleTokenizer

ASCII = [chr(code) for code in range(128)]
WORDS = sorted({word for line in CORPUS for word in line.split() if word.isascii()})
CONFIGS = {
    "bert-uncased": dict(clean_text=True, lowercase=True),
    "bert-cased": dict(clean_text=True, lowercase=False),
    "bert-no-clean": dict(clean_text=False, lowercase=True),
    "bert-raw": dict(clean_text=False, lowercase=False),
    "sequence": dict(sequence=True),
    "prefix-@@": dict(clean_text=True, lowercase=True, prefix="@@"),
    "prefix-empty": dict(clean_text=True, lowercase=True, prefix=""),
    "short-words": dict(clean_text=True, lowercase=True, max_chars=6),
}
SPECIAL = ("[UNK]", "[PAD]", "[CLS]")
SETTINGS = settings(
    max_examples=150, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def wordpiece_tokenizer(
    *, clean_text: bool = True, lowercase: bool = True, prefix: str = "##", max_chars: int = 100,
    sequence: bool = False,
) -> Tokenizer:
    """A small WordPiece tokenizer: corpus words (both cases), every printable ASCII character, continuation pieces."""
    chars = [chr(code) for code in range(33, 127)]
    pieces = ["[UNK]", "[PAD]", *chars, *(prefix + c for c in chars), *(prefix + s for s in ("s", "ing", "ed", "er"))]
    pieces += [*WORDS[:120], *(w.capitalize() for w in WORDS[:40]), "Debian", "GNU", "x86"]
    vocab = {piece: index for index, piece in enumerate(dict.fromkeys(pieces))}
    tokenizer = Tokenizer(
        models.WordPiece(vocab=vocab, unk_token="[UNK]", continuing_subword_prefix=prefix, max_input_chars_per_word=max_chars)
    )
    if sequence:
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()])
    else:
        tokenizer.normalizer = normalizers.BertNormalizer(clean_text=clean_text, lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.add_special_tokens(list(SPECIAL))
    return tokenizer


def fast_path(tokenizer: Tokenizer) -> AsciiWordPiece:
    normalizer = tokenizer.normalizer
    fast = AsciiWordPiece.from_spec(json.loads(tokenizer.to_str()), normalizer.normalize_str if normalizer else str)
    assert fast is not None
    return fast


def reference(tokenizer: Tokenizer, texts: list[str], max_length: int | None) -> list[list[int]]:
    """tokenizers' ids, set up as model2vec sets it up."""
    if max_length is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_length)
    return [encoding.ids for encoding in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]


def fast_ids(fast: AsciiWordPiece, texts: list[str], max_length: int | None) -> list[list[int]]:
    """The fast path's ids, after checking that it takes every text."""
    assert fast.partition(texts) == (list(range(len(texts))), [])
    ids, offsets, lengths = fast.tokenize(texts, max_length)
    batch = [ids[o : o + n].tolist() for o, n in zip(offsets, lengths)]
    assert [fast.tokenize_one(text, max_length) for text in texts] == batch
    return batch


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def pair(request: pytest.FixtureRequest) -> tuple[Tokenizer, AsciiWordPiece]:
    tokenizer = wordpiece_tokenizer(**CONFIGS[request.param])
    return tokenizer, fast_path(tokenizer)


def test_every_ascii_character_in_every_context(pair: tuple[Tokenizer, AsciiWordPiece]) -> None:
    tokenizer, fast = pair
    texts = []
    for c in ASCII:
        texts += [c, f"a{c}b", f"The{c}{c}Fox {c} x{c}", f"{c}Debian{c}", f"gnu{c}s {c}ing", f"{c * 3}fox{c}"]
    assert fast_ids(fast, texts, None) == reference(tokenizer, texts, None)


def test_fuzzed_ascii_batches(pair: tuple[Tokenizer, AsciiWordPiece]) -> None:
    tokenizer, fast = pair
    piece = st.one_of(st.sampled_from(WORDS), st.sampled_from(ASCII), st.text("abcdefgXYZ09#@", max_size=12))
    text = st.one_of(st.text(st.sampled_from(ASCII), max_size=80), st.lists(piece, max_size=40).map("".join))
    text = text.filter(lambda t: not any(special in t for special in SPECIAL))  # those go to tokenizers (below)

    @SETTINGS
    @given(texts=st.lists(text, min_size=1, max_size=10), max_length=st.sampled_from([None, 1, 3, 512]))
    def check(texts: list[str], max_length: int | None) -> None:
        assert fast_ids(fast, texts, max_length) == reference(tokenizer, texts, max_length)

    check()


def test_added_token_scan_finds_exactly_the_texts_holding_one() -> None:
    """The scan for added-token texts (one regex over the patterns' trie) against a plain substring test, on patterns
    from a 5-character alphabet: many share prefixes, are prefixes of each other or repeat, and include regex syntax."""
    alphabet = "ab[.*"
    patterns_st = st.lists(st.text(alphabet, min_size=1, max_size=6), min_size=1, max_size=40)

    @SETTINGS
    @given(patterns=patterns_st, texts=st.lists(st.text(alphabet, max_size=30), max_size=20))
    def check(patterns: list[str], texts: list[str]) -> None:
        find = ascii_wordpiece._finder(patterns)
        assert find is not None
        assert [bool(find(text)) for text in texts] == [any(p in text for p in patterns) for text in texts]

    check()
    assert ascii_wordpiece._finder([]) is None
    assert ascii_wordpiece._finder(["", "x"])("anything")  # an empty added token: no text is taken


def test_words_around_the_length_limit() -> None:
    tokenizer = wordpiece_tokenizer(max_chars=10)
    fast = fast_path(tokenizer)
    texts = ["a" * n for n in range(1, 14)] + ["fox" * n for n in range(1, 6)] + ["qqqq" * 30, "Qq" * 60 + " fox"]
    ids = fast_ids(fast, texts, None)
    assert ids == reference(tokenizer, texts, None)
    assert ids[len("a" * 11) - 1] == [tokenizer.token_to_id("[UNK]")]  # 11 characters: over the limit


def test_added_tokens_go_to_tokenizers(tmp_path: Path) -> None:
    """tokenizers matches added tokens before normalising (or in the normalised text): such texts are not taken."""
    tokenizer = wordpiece_tokenizer()
    tokenizer.add_tokens([AddedToken("Quick Fox", normalized=True), AddedToken("RAW.thing", normalized=False)])
    fast = fast_path(tokenizer)
    texts = ["the [CLS] fox", "a QUICK FOX jumps", "quick\tfox", "quick\rfox", "RAW.thing here", "raw.thing here",
             "plain dog", "[cls]"]
    taken, others = fast.partition(texts)
    assert others == [0, 1, 2, 3, 4]
    bundle = _bundle_tokenizer(tokenizer, tmp_path)
    assert _batch_ids(bundle, texts) == reference(tokenizer, texts, 512)
    assert _batch_ids(bundle, [texts[i] for i in taken]) == fast_ids(fast, [texts[i] for i in taken], 512)


def test_mixed_batches_keep_their_order(tmp_path: Path) -> None:
    tokenizer = wordpiece_tokenizer()
    bundle = _bundle_tokenizer(tokenizer, tmp_path)
    texts = ["the fox", "café naïve", "", "the [CLS] dog", "東京 fox", "plain ascii text", "\ud800 lone", "x" * 700]
    assert bundle.fast_path is not None
    assert bundle.fast_path.partition(texts) == ([0, 2, 5, 7], [1, 3, 4, 6])
    expected = reference(tokenizer, [t.replace("\ud800", "\ufffd") for t in texts], 512)
    assert _batch_ids(bundle, texts) == expected
    assert [bundle.tokenize_one(text) for text in texts] == expected


def test_a_full_word_cache_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ascii_wordpiece, "WORD_CACHE_SIZE", 3)
    tokenizer = wordpiece_tokenizer()
    fast = fast_path(tokenizer)
    texts = [" ".join(f"{w}ing{w}s" for w in WORDS[i : i + 7]) for i in range(0, len(WORDS), 5)]
    for _ in range(2):
        assert fast_ids(fast, texts, None) == reference(tokenizer, texts, None)
    assert len(fast._splits) <= 3


@pytest.mark.parametrize(
    "change",
    ["bpe", "whitespace-pre-tokenizer", "replace-normalizer", "strip-normalizer", "unk-not-in-vocab", "no-pre-tokenizer"],
)
def test_other_pipelines_have_no_fast_path(change: str) -> None:
    spec = json.loads(wordpiece_tokenizer().to_str())
    if change == "bpe":
        spec["model"] = json.loads(Tokenizer(models.BPE(vocab={"a": 0, "[UNK]": 1}, merges=[])).to_str())["model"]
    elif change == "whitespace-pre-tokenizer":
        spec["pre_tokenizer"] = {"type": "Whitespace"}
    elif change == "replace-normalizer":
        spec["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Lowercase"}, {"type": "Replace", "pattern": {"String": "a"}, "content": "b"}]}
    elif change == "strip-normalizer":
        spec["normalizer"] = {"type": "Strip", "strip_left": True, "strip_right": True}
    elif change == "unk-not-in-vocab":
        spec["model"]["unk_token"] = "<unk>"
    else:
        spec["pre_tokenizer"] = None
    assert AsciiWordPiece.from_spec(spec, str) is None


@pytest.mark.parametrize("kind", ["wordpiece-bert", "bpe", "unigram", "wordpiece-whitespace"])
def test_only_candidate_tokenizer_files_are_parsed(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`BundleTokenizer` parses tokenizer.json as JSON (for the fast path) only for WordPiece behind BertPreTokenizer:
    a large Unigram or BPE vocabulary parsed into Python objects would cost a multiple of the file in memory."""
    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE(vocab={"t": 0, "h": 1, "e": 2, "th": 3, "[UNK]": 4}, merges=[("t", "h")], unk_token="[UNK]"))
    elif kind == "unigram":
        tokenizer = Tokenizer(models.Unigram([("<unk>", 0.0), ("the", -1.0), ("t", -2.0), ("h", -2.0), ("e", -2.0)], 0))
    else:
        tokenizer = wordpiece_tokenizer()
    # Each case differs from the candidate in one part only: the model, or the pre-tokenizer.
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace() if kind == "wordpiece-whitespace" else pre_tokenizers.BertPreTokenizer()
    parsed: list[str] = []
    loads = json.loads
    monkeypatch.setattr(tokens_module.json, "loads", lambda text, **kwargs: parsed.append(text) or loads(text, **kwargs))
    bundle = _bundle_tokenizer(tokenizer, tmp_path)
    assert (bundle.fast_path is not None) == (kind == "wordpiece-bert")
    assert len(parsed) == (kind == "wordpiece-bert")
    texts = ["the the", "thee, café", ""]
    assert _batch_ids(bundle, texts) == reference(tokenizer, texts, 512)


def test_potion_tokenizer_on_the_debian_texts(potion_bundle: Path, debian_texts: list[str]) -> None:
    """The real tokenizer, 16,000 real texts, cut to the model's character limit as the embedder cuts them."""
    manifest = json.loads((potion_bundle / "m2v_edge.json").read_text())
    limit = manifest["max_length"] * manifest["median_token_length"]
    texts = [text[:limit] for text in debian_texts]
    bundle = BundleTokenizer(potion_bundle / "tokenizer.json", manifest["max_length"])
    tokenizer = Tokenizer.from_file(str(potion_bundle / "tokenizer.json"))
    assert bundle.fast_path is not None
    taken, _ = bundle.fast_path.partition(texts)
    assert len(taken) > 15_000  # the Debian texts are mostly ASCII: the fast path is what is being tested
    assert _batch_ids(bundle, texts) == reference(tokenizer, texts, manifest["max_length"])


def _bundle_tokenizer(tokenizer: Tokenizer, folder: Path) -> BundleTokenizer:
    path = folder / "tokenizer.json"
    tokenizer.save(str(path))
    return BundleTokenizer(path, 512)


def _batch_ids(bundle: BundleTokenizer, texts: list[str]) -> list[list[int]]:
    batch = bundle.tokenize(texts)
    return [batch.ids[o : o + n].tolist() for o, n in zip(batch.offsets, batch.lengths)]


def test_a_profile_can_turn_the_fast_path_off(
    potion_bundle: Path, potion_reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the native core, `ascii_fast_path = false` (the memory-first profiles) sends every text through
    tokenizers, never parses the file for the fast path, and changes no vector: the batches and their ids are the
    same."""
    import dataclasses

    import numpy as np

    from m2v_edge.device_profiles import load_profile
    from m2v_edge.runtime import EdgeEmbedder

    texts, reference = potion_reference
    monkeypatch.setenv("M2V_EDGE_NATIVE", "0")
    zero = load_profile("raspberry-pi-zero-2w")
    assert not zero.encoding.ascii_fast_path
    fast = dataclasses.replace(zero, encoding=dataclasses.replace(zero.encoding, ascii_fast_path=True))
    off = EdgeEmbedder(potion_bundle, profile=zero, variant="fp32")
    on = EdgeEmbedder(potion_bundle, profile=fast, variant="fp32")
    assert off._tokenizer.fast_path is None and on._tokenizer.fast_path is not None
    parsed: list[str] = []
    loads = json.loads
    monkeypatch.setattr(tokens_module.json, "loads", lambda text, **kwargs: parsed.append(text) or loads(text, **kwargs))
    assert BundleTokenizer(potion_bundle / "tokenizer.json", 512, ascii_fast_path=False).fast_path is None
    assert not parsed  # the vocabulary copy is never made
    vectors = off.encode(texts)
    assert np.array_equal(vectors, on.encode(texts))
    assert np.array_equal(off.encode(texts[:1]), on.encode(texts[:1]))  # the single-text path too
    cosine = np.sum(vectors * reference, axis=1) / np.maximum(
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1), 1e-30
    )
    nonzero = np.linalg.norm(reference, axis=1) > 0
    assert cosine[nonzero].min() > 0.99999 and not vectors[~nonzero].any()
