"""`EdgeEmbedder`: a bundle loaded for encoding, with model2vec's `StaticModel.encode` semantics."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from m2v_edge.bundle import ATTENTION_MASK, INPUT_IDS, OUTPUT, Manifest, read_manifest, verify_model
from m2v_edge.device_profiles import Profile, resolve_profile
from m2v_edge.errors import BundleError
from m2v_edge.models import resolve_bundle
from m2v_edge.runtime.batching import padded_batches
from m2v_edge.runtime.session import build_session
from m2v_edge.runtime.token_batch import TokenBatch
from m2v_edge.runtime.tokenizing import TokenizingPath, open_tokenizer, path_name

logger = logging.getLogger(__name__)

CHUNK_TEXTS = 1024
CHUNK_CHARS_PER_BUDGET_TOKEN = 32
"""Texts, and characters per token of the token budget, tokenised per tokenizer call (whichever limit comes
first): they bound the memory the tokenizer's output takes and set the pipeline's grain. With a 4,096-token
budget a chunk is 131,072 characters (about 30,000 English tokens): measured fastest on 8,000 Debian documents
(14.8k/s against 12.9k/s at half that and 13.8k/s at double); a 2,048-token (small-board) budget halves it."""


class EdgeEmbedder:
    """Encodes texts with an m2v-edge bundle; vectors equal model2vec's `StaticModel.encode`.

    One instance is safe to use from many threads at once: encoding keeps no state between calls that could change a
    result (a word-split cache and the measured tokenising path only change speed), and onnxruntime sessions and
    tokenizers are thread-safe. It pickles (for multiprocessing) and copies as its arguments: the copy loads the
    bundle again.

    :param bundle: the bundle folder (written by `m2v_edge.export.export_model`), or the name of an installed
        model package (`m2v-edge models`); an existing path wins over a package name.
    :param variant: `fp32`, `fp16`, `int8` or `int4`; default: the profile's first preference the bundle has.
    :param threads: onnxruntime intra-op threads; default: the profile's.
    :param profile: `"auto"` (detect the device), a profile name, a profile TOML path or a `Profile`.
    :param token_budget: most padded tokens per onnxruntime call; default: the profile's.
    :param tokenizing: which path gives the token ids: `"auto"` (the native core when the bundle allows it), or
        `"native"`, `"python"`, `"tokenizers"` (see `m2v_edge.runtime.tokenizing`); all give the same ids.
    """

    def __init__(
        self,
        bundle: str | Path,
        *,
        variant: str | None = None,
        threads: int | None = None,
        profile: str | Path | Profile | None = "auto",
        token_budget: int | None = None,
        tokenizing: TokenizingPath = "auto",
    ) -> None:
        self.bundle_dir = resolve_bundle(bundle)
        self.manifest: Manifest = read_manifest(self.bundle_dir)
        self.profile: Profile = resolve_profile(profile)
        self.variant: str = self._choose_variant(variant)
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        budget = token_budget if token_budget is not None else self.profile.encoding.token_budget
        if budget < 1:
            raise ValueError(f"token_budget must be >= 1, got {budget}")
        self.token_budget: int = budget
        self._tokenizer = open_tokenizer(
            self.bundle_dir,
            self.manifest,
            path=tokenizing,
            ascii_fast_path=self.profile.encoding.ascii_fast_path,
            threads=threads if threads is not None else self.profile.session.intra_op_threads,
        )
        self.tokenizing: str = path_name(self._tokenizer)
        """The path that gives this embedder's token ids: native, python or tokenizers."""
        self._tokenizing_asked = tokenizing
        model_path = verify_model(self.bundle_dir, self.manifest, self.variant)
        try:
            self.session = build_session(model_path, self.profile.session, threads=threads)
        except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable graphs
            raise BundleError(f"onnxruntime cannot load {model_path}: {exc}; re-export the bundle") from None
        self._char_limit = self.manifest.char_limit
        self._threads = threads

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (and copy) as the arguments that rebuild this embedder: the bundle is loaded again on unpickling."""
        return {
            "bundle": str(self.bundle_dir),
            "variant": self.variant,
            "threads": self._threads,
            "profile": self.profile,
            "token_budget": self.token_budget,
            "tokenizing": self._tokenizing_asked,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state.pop("bundle"), **state)  # type: ignore[misc]

    @property
    def dim(self) -> int:
        """Length of each vector."""
        return self.manifest.dim

    @property
    def fingerprint(self) -> str:
        """Identity of the vectors this embedder produces (source weights, variant, normalize, dim)."""
        return self.manifest.fingerprint(self.variant)

    def encode(self, texts: Sequence[str] | str) -> np.ndarray:
        """Encode texts into a float32 array of shape [len(texts), dim] (a single string counts as one text)."""
        if isinstance(texts, str):
            texts = [texts]
        texts = self._prepare(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if len(texts) == 1:
            self._encode_single(texts[0], out)
            return out
        chunks = _chunk_bounds(texts, CHUNK_CHARS_PER_BUDGET_TOKEN * self.token_budget)
        if len(chunks) <= 1:
            self._pool(self._tokenizer.tokenize(texts), out)
            return out
        # Tokenise the next chunk in a worker while this thread pools the current one: both the
        # tokenizer and onnxruntime release the GIL, so the two overlap.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="m2v-edge-tokenize") as worker:
            pending = worker.submit(self._tokenizer.tokenize, texts[slice(*chunks[0])])
            for index, (start, stop) in enumerate(chunks):
                tokens = pending.result()
                if index + 1 < len(chunks):
                    pending = worker.submit(self._tokenizer.tokenize, texts[slice(*chunks[index + 1])])
                self._pool(tokens, out[start:stop])
        return out

    def encode_documents(self, documents: Sequence[str]) -> list[np.ndarray]:
        """pymilvus-style: one float32 vector per document."""
        return list(self.encode(documents))

    def encode_queries(self, queries: Sequence[str]) -> list[np.ndarray]:
        """pymilvus-style: one float32 vector per query (queries and documents are encoded alike)."""
        return list(self.encode(queries))

    def __call__(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Same as `encode_documents`."""
        return self.encode_documents(texts)

    def __repr__(self) -> str:
        return f"EdgeEmbedder({str(self.bundle_dir)!r}, variant={self.variant!r}, profile={self.profile.name!r})"

    def _choose_variant(self, requested: str | None) -> str:
        available = self.manifest.variants
        if requested is not None:
            if requested not in available:
                raise BundleError(
                    f"bundle {self.bundle_dir} has no variant {requested!r}; it has {', '.join(available)} "
                    "(re-export with --variants to add it)"
                )
            return requested
        preferences = self.profile.encoding.variants
        for variant in preferences:
            if variant in available:
                if variant != preferences[0]:
                    logger.warning(
                        "bundle %s has no %s variant (profile %s's first choice); using %s",
                        self.bundle_dir, preferences[0], self.profile.name, variant,
                    )
                return variant
        fallback = next(iter(available))
        logger.warning(
            "bundle %s has none of profile %s's variants; using %s", self.bundle_dir, self.profile.name, fallback
        )
        return fallback

    def _prepare(self, texts: Sequence[str]) -> list[str]:
        """Check types and apply model2vec's character pre-truncation."""
        limit = self._char_limit
        prepared = list(texts)
        for index, text in enumerate(prepared):
            if not isinstance(text, str):
                raise TypeError(f"texts[{index}] is {type(text).__name__}, not str; decode or convert it first")
            if limit is not None and len(text) > limit:
                prepared[index] = text[:limit]
        return prepared

    def _encode_single(self, text: str, out: np.ndarray) -> None:
        """The latency path: no sorting, no padding."""
        ids = self._tokenizer.tokenize_one(text)
        if ids:
            row = np.array([ids], dtype=np.int64)
            out[0] = self._run(row, np.ones_like(row))[0]

    def _pool(self, tokens: TokenBatch, out: np.ndarray) -> None:
        """Run the graph on length-sorted batches of at most `token_budget` padded tokens; fill `out`."""
        for rows, ids, mask in padded_batches(tokens, self.token_budget):
            out[rows] = self._run(ids, mask)

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT], {INPUT_IDS: ids, ATTENTION_MASK: mask})[0]


def _chunk_bounds(texts: list[str], max_chars: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) ranges of at most CHUNK_TEXTS texts and, unless one text alone is longer,
    `max_chars` characters."""
    ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
    bounds = []
    start = 0
    while start < len(texts):
        before = int(ends[start - 1]) if start else 0
        stop = int(np.searchsorted(ends, before + max_chars, side="right"))
        stop = min(max(stop, start + 1), start + CHUNK_TEXTS)
        bounds.append((start, stop))
        start = stop
    return bounds
