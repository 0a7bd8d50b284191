"""The tokenizers paths: texts to token ids through tokenizers, and the pure-Python exact ASCII fast path where it
applies (model2vec's tokenizer settings either way)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Encoding, Tokenizer, models, pre_tokenizers

from m2v_edge.errors import BundleError
from m2v_edge.runtime.ascii_wordpiece import AsciiWordPiece
from m2v_edge.runtime.path_choice import RACE_MIN_CPUS, PathChoice, usable_cpus
from m2v_edge.runtime.token_batch import TokenBatch

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class BundleTokenizer:
    """A bundle's `tokenizer.json` set up as model2vec sets it up: no special tokens, no padding, truncation to
    `max_length` tokens. Texts the exact ASCII fast path (`AsciiWordPiece`) takes skip tokenizers, unless tokenizers
    was measured faster on this machine for chunks as large (`PathChoice`). Thread-safe.

    :param ascii_fast_path: False keeps every text on tokenizers (same ids), which saves the fast path's memory.
    """

    def __init__(self, path: Path, max_length: int | None, *, ascii_fast_path: bool = True) -> None:
        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception for malformed files
            raise BundleError(f"{path} is not a valid tokenizer file: {exc}; re-export the bundle") from None
        self._tokenizer.no_padding()
        if max_length is None:
            self._tokenizer.no_truncation()
        else:
            self._tokenizer.enable_truncation(max_length)
        self.max_length = max_length
        self.fast_path = _fast_path(self._tokenizer, path) if ascii_fast_path else None
        """The ASCII fast path, None when it is turned off or this tokenizer's pipeline is not one it reproduces."""
        self.path_choice = PathChoice(race=self.fast_path is not None and usable_cpus() >= RACE_MIN_CPUS)
        """Whether large ASCII chunks go down the fast path or through tokenizers (same ids; measured speed)."""

    def tokenize(self, texts: Sequence[str]) -> TokenBatch:
        """Token ids of a list of texts."""
        if self.fast_path is None or not texts:
            return TokenBatch.from_encodings(self._encode(texts))
        fast, others = self.fast_path.partition(texts)
        parts = []
        if fast:
            picked = texts if not others else [texts[index] for index in fast]
            parts.append((fast, self._tokenize_ascii(self.fast_path, picked)))
        if others:
            parts.append((others, TokenBatch.from_encodings(self._encode([texts[index] for index in others]))))
        return parts[0][1] if len(parts) == 1 else TokenBatch.merge(len(texts), parts)

    def tokenize_one(self, text: str) -> list[int]:
        """Token ids of one text."""
        if self.fast_path is not None and self.fast_path.takes(text):
            return self.fast_path.tokenize_one(text, self.max_length)
        return self._encode([text])[0].ids

    def _tokenize_ascii(self, fast_path: AsciiWordPiece, texts: Sequence[str]) -> TokenBatch:
        """Texts the fast path takes, down whichever path `PathChoice` finds faster for their size."""
        chars = sum(map(len, texts))
        path, timed = self.path_choice.choose(chars)
        start = time.perf_counter()
        if path == "fast":
            tokens = TokenBatch(*fast_path.tokenize(texts, self.max_length))
        else:
            tokens = TokenBatch.from_encodings(self._encode(texts))
        if timed:
            self.path_choice.record(path, chars, time.perf_counter() - start)
        return tokens

    def _encode(self, texts: Sequence[str]) -> list[Encoding]:
        try:
            return self._tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        except TypeError:
            # tokenizers refuses strings UTF-8 cannot encode (lone surrogates; model2vec raises here too):
            # read each lone surrogate as U+FFFD, one code point for one so the pre-truncation is unchanged.
            cleaned = [_LONE_SURROGATE.sub("\ufffd", text) for text in texts]
            return self._tokenizer.encode_batch_fast(cleaned, add_special_tokens=False)


def _fast_path(tokenizer: Tokenizer, path: Path) -> AsciiWordPiece | None:
    """The ASCII fast path for `tokenizer` (read from `path`), None when its pipeline is not one it reproduces.

    Only a WordPiece model behind a `BertPreTokenizer` can qualify, and only then is the file parsed as JSON for
    `AsciiWordPiece.from_spec`: for a large Unigram or BPE vocabulary that parse would be wasted (measured on a 28 MB
    Unigram file: 0.57 s and 119 MB of peak memory).
    """
    if not isinstance(tokenizer.model, models.WordPiece):
        return None
    if not isinstance(tokenizer.pre_tokenizer, pre_tokenizers.BertPreTokenizer):
        return None
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # tokenizers read it a moment ago: only a file changed meanwhile fails
        raise BundleError(f"{path} is not a valid tokenizer file: {exc}; re-export the bundle") from None
    normalizer = tokenizer.normalizer
    return AsciiWordPiece.from_spec(spec, normalizer.normalize_str if normalizer else str)
