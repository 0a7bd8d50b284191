"""The native tokenizing core (`m2v_edge._core`, compiled from m2v_edge/_native/): the one module that imports it.

`NativeTokenizer` gives the same interface as the tokenizers paths (`m2v_edge.runtime.tokens.BundleTokenizer`):
`tokenize(texts) -> TokenBatch` and `tokenize_one(text) -> list[int]`, with the same ids. It reads the bundle's
`tokenizer.m2v`, mapped read-only (the C loader checks every offset in it before use), so a large vocabulary costs
shared, evictable page cache instead of private memory, and never loads tokenizers.

Where the core is not built (a platform without a wheel and without a compiler), or the environment variable
``M2V_EDGE_NATIVE=0`` turns it off (to compare paths, or to run the test suite without it), `available()` is False
and `unavailable_reason()` says why: bundles then tokenize through tokenizers, and exports write no tokenizer.m2v.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from m2v_edge.errors import BundleError
from m2v_edge.runtime.token_batch import TokenBatch

try:
    from m2v_edge import _core
except ImportError as _error:  # not built here: the tokenizers paths take over
    _core = None
    _IMPORT_ERROR = str(_error)
else:
    _IMPORT_ERROR = ""

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
SWITCH = "M2V_EDGE_NATIVE"
"""Environment variable: "0" turns the native core off."""


def available() -> bool:
    """Whether the native core is built into this installation and not turned off."""
    return _core is not None and os.environ.get(SWITCH, "1") != "0"


def unavailable_reason() -> str:
    """Why the core cannot be used here ("" when it can)."""
    if _core is None:
        return (
            f"m2v-edge was installed without its native core ({_IMPORT_ERROR}); "
            "reinstall it from a wheel or with a C compiler"
        )
    if not available():
        return f"the native core is turned off ({SWITCH}=0)"
    return ""


def core_version() -> int | None:
    """The version of the core (`M2V_CORE_VERSION` in m2v_edge/_native/m2v_core.h), None when it is not available."""
    return int(_core.CORE_VERSION) if available() else None


def double_array(labels: bytes, children: bytes, values: bytes) -> bytes:
    """The tokenizer file's double-array units for a breadth-first byte trie (the export builds its tries here)."""
    if not available():
        raise BundleError(unavailable_reason())
    return _core.double_array(labels, children, values)


def batches(tokens: TokenBatch, budget: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The pooling graph's batches (see `m2v_edge.runtime.batching`), built by the core: (rows, ids, mask)."""
    arrays = (np.ascontiguousarray(a, dtype=np.int64) for a in (tokens.ids, tokens.offsets, tokens.lengths))
    for rows, width, padded, mask in _core.batches(*arrays, budget):
        indices = np.frombuffer(rows, dtype=np.int64)
        shape = (len(indices), width)
        yield indices, _int64(padded).reshape(shape), _int64(mask).reshape(shape)


class NativeTokenizer:
    """A bundle's `tokenizer.m2v` in the native core: tokenizers' ids, with model2vec's settings (no special tokens,
    no padding, truncation to `max_length`). Thread-safe; batches release the GIL and use `threads` threads.

    :param path: the tokenizer file (already verified against the manifest).
    :param max_length: tokens kept per text, None for all.
    :param threads: threads a batch is shared among.
    """

    def __init__(self, path: Path, max_length: int | None, *, threads: int = 1) -> None:
        if not available():
            raise BundleError(unavailable_reason())
        try:
            with open(path, "rb") as handle:
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
            raise BundleError(f"cannot map {path}: {exc}; re-export the bundle") from None
        try:
            self._core = _core.Tokenizer(self._map)
        except ValueError as exc:
            raise BundleError(f"{path} is damaged ({exc}); re-export the bundle or copy it again") from None
        self.path = path
        self.id_limit: int = self._core.id_limit
        """Every id the file gives is below this: the table rows the export compiled it for."""
        self.max_length = max_length
        self.threads = max(1, threads)
        self._limit = -1 if max_length is None else max_length

    def tokenize(self, texts: Sequence[str]) -> TokenBatch:
        """Token ids of a list of texts."""
        try:
            ids, lengths = self._core.encode_batch(texts, self._limit, self.threads)
        except UnicodeEncodeError:
            ids, lengths = self._core.encode_batch(_cleaned(texts), self._limit, self.threads)
        lengths_array = np.frombuffer(lengths, dtype=np.int64)
        return TokenBatch(np.frombuffer(ids, dtype=np.int64), np.cumsum(lengths_array) - lengths_array, lengths_array)

    def tokenize_one(self, text: str) -> list[int]:
        """Token ids of one text."""
        try:
            return self._core.encode(text, self._limit)
        except UnicodeEncodeError:
            return self._core.encode(_cleaned([text])[0], self._limit)

    def normalize(self, text: str) -> str:
        """The tokenizer's normalizer applied to `text` (no added tokens), for tests and diagnostics."""
        return self._core.normalize(_cleaned([text])[0])

    def pre_tokenize(self, text: str) -> list[str]:
        """The pre-tokenizer's pieces of `text`, for tests and diagnostics."""
        return self._core.pre_tokenize(_cleaned([text])[0])


_TABLE_KINDS = {"fp32": 0, "fp16": 1, "int8": 2, "int4": 3}


class NativePooler:
    """One text's vector in the core, from a variant's mapped arrays (`m2v_edge.runtime.table.VariantTable`): the
    single-text path, without an onnxruntime call. The same arithmetic as the pooling graph (parity-tested against
    it); the GIL is held for short texts, whose tokenizing and pooling take a few microseconds.

    :param tokenizer: the bundle's native tokenizer.
    :param table: the variant's arrays.
    """

    def __init__(self, tokenizer: NativeTokenizer, table: Any) -> None:
        arrays = table.arrays
        values, scales = arrays["table"], arrays["scales"]
        blocks = int(scales.shape[1]) if table.block_size is not None else 0
        try:
            self._core = _core.Pooler(
                table=values, kind=_TABLE_KINDS[table.variant], rows=int(values.shape[0]), dim=table.dim,
                block=table.block_size or 0, blocks=blocks, scales=scales, mapping=arrays["mapping"],
                weights=arrays["weights"], id_count=table.vocab_size,
                unk_id=-1 if table.unk_id is None else table.unk_id, normalize=table.normalize,
            )
        except ValueError as exc:
            raise BundleError(f"the {table.variant} arrays cannot be pooled ({exc}); re-export the bundle") from None
        self._tokenizer = tokenizer
        self._table = table  # keeps the mapping alive

    def embed(self, text: str, out: np.ndarray) -> None:
        """Write the vector of `text` into `out` (float32, C-contiguous, [dim])."""
        try:
            self._core.embed(self._tokenizer._core, text, self._tokenizer._limit, out)
        except UnicodeEncodeError:
            self._core.embed(self._tokenizer._core, _cleaned([text])[0], self._tokenizer._limit, out)


def _int64(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.int64)


def _cleaned(texts: Sequence[str]) -> list[str]:
    """Lone surrogates (which UTF-8 cannot encode; tokenizers refuses them, and so does model2vec) read as U+FFFD,
    one code point for one, as the tokenizers path reads them."""
    return [_LONE_SURROGATE.sub("\ufffd", text) for text in texts]
