"""`EdgeEmbedder`: a bundle loaded for encoding, with model2vec's `StaticModel.encode` semantics."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np

from m2v_edge.bundle import ATTENTION_MASK, INPUT_IDS, OUTPUT, Manifest, read_manifest, verify_model
from m2v_edge.device_profiles import Profile, resolve_profile
from m2v_edge.errors import BundleError
from m2v_edge.models import resolve_bundle
from m2v_edge.runtime.batching import padded_batches
from m2v_edge.runtime.encode_options import UNSET, EncodeOptions, encode_options
from m2v_edge.runtime.session import build_session
from m2v_edge.runtime.token_batch import TokenBatch
from m2v_edge.runtime.tokenizing import (
    BundleTokenizing,
    TokenizingPath,
    open_tokenizer,
    path_name,
    single_text_pooler,
)
from m2v_edge.runtime.zero_vectors import zero_rows, zero_vector_message

logger = logging.getLogger(__name__)
zero_vector_logger = logging.getLogger("m2v_edge.runtime.zero_vectors")
"""Where `encode` logs its one WARNING per call about texts that gave zero vectors: set its level to ERROR to
silence it (the `m2v-edge encode` command does, and counts them over the whole input instead)."""
ZERO_VECTOR_EXAMPLES = 50
"""Texts that gave zero vectors looked at to name their script in the warning."""

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
            fallback_limit_mib=self.profile.encoding.fallback_tokenizer_mib,
        )
        self.tokenizing: str = path_name(self._tokenizer)
        """The path that gives this embedder's token ids: native, python or tokenizers."""
        self._tokenizing_asked = tokenizing
        self._pooler = single_text_pooler(self.bundle_dir, self.manifest, self.variant, self._tokenizer)
        """Pools single texts in the native core (None: through onnxruntime)."""
        model_path = verify_model(self.bundle_dir, self.manifest, self.variant)
        try:
            self.session = build_session(model_path, self.profile.session, threads=threads)
        except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable graphs
            raise BundleError(f"onnxruntime cannot load {model_path}: {exc}; re-export the bundle") from None
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

    def encode(
        self,
        sentences: Sequence[str] | str,
        *,
        show_progress_bar: bool = False,
        max_length: int | None = UNSET,
        normalize: bool | None = None,
        batch_size: int = 1024,
        use_multiprocessing: bool = True,
        multiprocessing_threshold: int = 10_000,
        **kwargs: Any,
    ) -> np.ndarray:
        """Encode texts as model2vec's `StaticModel.encode` does: a float32 [len(sentences), dim] array, or a [dim]
        vector for a single string.

        Texts that give zero vectors (none of their tokens is known to the model) are counted in one WARNING per call,
        on the logger `m2v_edge.runtime.zero_vectors`.

        :param sentences: the texts, or one text.
        :param show_progress_bar: show a progress bar on stderr (needs tqdm; without it, none is shown).
        :param max_length: tokens kept per text for this call, None for all; texts are first cut to `max_length *
            median_token_length` characters, as model2vec does. Default: the bundle's `max_length`.
        :param normalize: L2-normalise the vectors or not for this call; default: the bundle's setting.
        :param batch_size: accepted for model2vec's sake: how many texts go to onnxruntime at once is set by the
            token budget instead.
        :param use_multiprocessing: accepted, no effect: tokenising and onnxruntime already use the profile's threads.
        :param multiprocessing_threshold: accepted, no effect.
        :param kwargs: any other keyword is ignored, as model2vec ignores them (named in one DEBUG log line).
        """
        options = encode_options(
            self.manifest,
            show_progress_bar=show_progress_bar,
            max_length=max_length,
            normalize=normalize,
            batch_size=batch_size,
            ignored=kwargs,
        )
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        vectors = self._encode(texts, options)
        self._warn_zero_vectors(texts, vectors)
        return vectors[0] if isinstance(sentences, str) else vectors

    def encode_documents(self, documents: Sequence[str]) -> list[np.ndarray]:
        """pymilvus-style: one float32 vector per document (a single string counts as one document)."""
        return list(self.encode([documents] if isinstance(documents, str) else documents))

    def encode_queries(self, queries: Sequence[str]) -> list[np.ndarray]:
        """pymilvus-style: one float32 vector per query (queries and documents are encoded alike)."""
        return self.encode_documents(queries)

    def __call__(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Same as `encode_documents`."""
        return self.encode_documents(texts)

    def tokenize(self, sentences: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, as model2vec's `StaticModel.tokenize` gives them: no special tokens, truncated to
        the bundle's `max_length` tokens, unknown tokens dropped (no character pre-truncation)."""
        if isinstance(sentences, str):
            raise TypeError("tokenize takes a list of texts; for one text, pass [text]")
        tokens = self._tokenizer.tokenize(self._prepare(sentences, None))
        return self._id_lists(tokens)

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

    def _prepare(self, texts: Sequence[str], char_limit: int | None) -> list[str]:
        """Check types and apply model2vec's character pre-truncation."""
        prepared = list(texts)
        for index, text in enumerate(prepared):
            if not isinstance(text, str):
                raise TypeError(f"texts[{index}] is {type(text).__name__}, not str; decode or convert it first")
            if char_limit is not None and len(text) > char_limit:
                prepared[index] = text[:char_limit]
        return prepared

    def _encode(self, texts: Sequence[str], options: EncodeOptions) -> np.ndarray:
        """The float32 [len(texts), dim] vectors of a list of texts."""
        texts = self._prepare(texts, options.char_limit)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        own_truncation = options.max_length == self.manifest.max_length
        if len(texts) == 1 and own_truncation and not options.show_progress_bar:
            self._encode_single(texts[0], out)
        elif texts:
            tokenize = (
                self._tokenizer.tokenize if own_truncation else partial(self._token_ids, max_length=options.max_length)
            )
            self._encode_chunks(texts, tokenize, out, options.show_progress_bar)
        if options.normalize and not self.manifest.normalize:
            out /= np.linalg.norm(out, axis=1, keepdims=True) + np.float32(1e-32)
        return out

    def _encode_chunks(
        self, texts: list[str], tokenize: Callable[[list[str]], TokenBatch], out: np.ndarray, show_progress: bool
    ) -> None:
        """Fill `out` chunk by chunk: the tokens of the next chunk are made in a worker while this thread pools the
        current one (the tokenizer and onnxruntime both release the GIL, so the two overlap)."""
        chunks = _chunk_bounds(texts, CHUNK_CHARS_PER_BUDGET_TOKEN * self.token_budget)
        bar = _progress_bar(len(texts)) if show_progress else None
        try:
            if len(chunks) == 1:  # no worker thread: it would cost a short call more than it saves
                self._pool(tokenize(texts), out)
                if bar is not None:
                    bar.update(len(texts))
                return
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="m2v-edge-tokenize") as worker:
                pending = worker.submit(tokenize, texts[slice(*chunks[0])])
                for index, (start, stop) in enumerate(chunks):
                    tokens = pending.result()
                    if index + 1 < len(chunks):
                        pending = worker.submit(tokenize, texts[slice(*chunks[index + 1])])
                    self._pool(tokens, out[start:stop])
                    if bar is not None:
                        bar.update(stop - start)
        finally:
            if bar is not None:
                bar.close()

    def _token_ids(self, texts: Sequence[str], max_length: int | None) -> TokenBatch:
        """Token ids truncated to `max_length` (None: not at all), whatever the bundle's own `max_length` is."""
        bundle_limit = self.manifest.max_length
        if bundle_limit is None or (max_length is not None and max_length <= bundle_limit):
            tokens = self._tokenizer.tokenize(texts)
        else:
            tokens = self._untruncated_tokenizer.tokenize(texts)
        if max_length is None:
            return tokens
        return TokenBatch(tokens.ids, tokens.offsets, np.minimum(tokens.lengths, max_length))

    @cached_property
    def _untruncated_tokenizer(self) -> BundleTokenizing:
        """This embedder's tokenizing path without truncation, for calls that keep more tokens than the bundle's
        `max_length`; made on first use."""
        return open_tokenizer(
            self.bundle_dir,
            dataclasses.replace(self.manifest, max_length=None),
            path=self.tokenizing,  # type: ignore[arg-type]
            ascii_fast_path=self.profile.encoding.ascii_fast_path,
            threads=self._threads if self._threads is not None else self.profile.session.intra_op_threads,
        )

    def _id_lists(self, tokens: TokenBatch) -> list[list[int]]:
        """Each text's token ids as a list, the unknown token dropped (as model2vec drops it after truncating)."""
        ids = tokens.ids.tolist()
        unk = self.manifest.unk_id
        return [
            [token for token in ids[start : start + length] if token != unk]
            for start, length in zip(tokens.offsets.tolist(), tokens.lengths.tolist())
        ]

    def _warn_zero_vectors(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """One WARNING naming how many texts gave zero vectors, and why, if any did."""
        rows = zero_rows(vectors)
        if len(rows):
            examples = [texts[index] for index in rows[:ZERO_VECTOR_EXAMPLES]]
            zero_vector_logger.warning(zero_vector_message(len(rows), len(texts), self.manifest.source.id, examples))

    def _encode_single(self, text: str, out: np.ndarray) -> None:
        """The latency path: no sorting, no padding; no onnxruntime call where the native core pools."""
        if self._pooler is not None:
            self._pooler.embed(text, out[0])
            return
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


def _progress_bar(total: int) -> Any:
    """A tqdm bar on stderr, or None (with an INFO line) when tqdm is not installed: it is no runtime dependency."""
    try:
        from tqdm import tqdm
    except ImportError:
        logger.info("show_progress_bar needs tqdm (pip install tqdm); encoding without a progress bar")
        return None
    return tqdm(total=total, desc="Encoding", unit="texts")
