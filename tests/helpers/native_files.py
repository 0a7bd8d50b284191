"""Small tokenizer.m2v files that reach every op of the native core, compiled by the exporter: for the fuzzers' seeds
(fuzz/make_seeds.py) and the random-mutation tests (tests/runtime/test_runtime_native_mutations.py)."""

from __future__ import annotations

import json

from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers

from helpers.charsmap import build_charsmap
from helpers.tiny_models import build_tokenizer
from m2v_edge.export.tokenizer_file import compile_tokenizer


def compiled(tokenizer: Tokenizer) -> bytes:
    """tokenizer.m2v compiled by the exporter from a tokenizers object, its id_limit the vocabulary size (no check
    against tokenizers: these files exist to reach every op of the core, not to match tokenizers on every text)."""
    spec = json.loads(tokenizer.to_str())
    return compile_tokenizer(spec, Tokenizer.from_str(json.dumps(spec)), tokenizer.get_vocab_size())


def every_op_unigram() -> Tokenizer:
    """The tiny Unigram with byte fallback, a Precompiled charsmap and every other normalizer and pre-tokenizer op
    the WordPiece below does not use, and added tokens with lstrip, rstrip and single_word."""
    spec = json.loads(build_tokenizer("unigram").to_str())
    spec["model"]["vocab"] += [[f"<0x{byte:02X}>", -20.0] for byte in range(256)]
    spec["model"]["byte_fallback"] = True
    tokenizer = Tokenizer.from_str(json.dumps(spec))
    rules = {"Ａ": "a", "ﬁ": "fi", "①": "1", "e\u0301": "é", "™": "TM", "\u3000": " ", "ß": "ss"}
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(list(build_charsmap(rules))), normalizers.NFKC(), normalizers.Replace("``", '"'),
        normalizers.Strip(left=True, right=False), normalizers.Prepend("▁"), normalizers.NFC(),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("--", behavior="merged_with_next"), pre_tokenizers.Punctuation(behavior="contiguous"),
        pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.CharDelimiterSplit("|"),
        pre_tokenizers.Split("▁▁", behavior="merged_with_previous", invert=True),
        pre_tokenizers.Metaspace(prepend_scheme="never", split=False),
    ])
    tokenizer.add_tokens([AddedToken("[[x]]", lstrip=True, rstrip=True), AddedToken("the", single_word=True),
                          AddedToken("ｑｕｉｃｋ", normalized=True)])
    return tokenizer


def every_op_wordpiece() -> Tokenizer:
    """The tiny WordPiece with the normalizers and pre-tokenizers the BERT pipeline does not use."""
    tokenizer = build_tokenizer("wordpiece")
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase(), normalizers.NFKD(),
        normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False),
        normalizers.Strip(),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Whitespace(), pre_tokenizers.Split("er", behavior="removed"),
        pre_tokenizers.Split("in", behavior="isolated"), pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.Punctuation(behavior="merged_with_previous"),
    ])
    tokenizer.add_tokens([AddedToken("quick brown", normalized=True, lstrip=True), AddedToken("##", rstrip=True)])
    return tokenizer
