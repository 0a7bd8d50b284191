"""The systems under test, loaded in this process: m2v-edge per variant, model2vec, laghu, fastembed, the tokenizer
floor.

Each is called the way its users call it, with default settings, on the raw texts; only the floor gets its texts
cut to the bundle's character limit beforehand (outside the timed call), as model2vec and m2v-edge do inside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE = "model2vec"
LAGHU = "laghu"
LAGHU_RS_PATH = "laghu, laghu-rs path"
"""Multilingual section only: laghu on a copy of the model whose tokenizer.json lets laghu take its laghu-rs Unigram
path (`bench.multilingual.laghu_rs_copy`)."""
FASTEMBED = "fastembed"
FLOOR = "tokenizers floor"
IMPORTS = "runtime imports"
"""Only in fresh processes: imports numpy, onnxruntime and tokenizers (m2v-edge's runtime dependencies) and
encodes nothing, the floor of any runtime built on them."""
FASTEMBED_MODEL = "minishlab/potion-base-8M"


def edge_key(variant: str) -> str:
    """The report name of an m2v-edge variant."""
    return f"m2v-edge {variant}"


def _identity(texts: list[str]) -> list[str]:
    return texts


@dataclass
class System:
    """One encoder under test."""

    key: str
    encode: Callable[[list[str]], Any]
    """Encodes a list of texts; the result is whatever the library returns (vectors, or encodings for the floor)."""
    description: str
    prepare: Callable[[list[str]], list[str]] = field(default=_identity)
    """Applied to the texts once, outside the timing (only the floor uses it)."""
    vectors: Callable[[list[str]], np.ndarray] | None = None
    """Encodes texts into a float array [n, dim] for the quality figures; None for the floor."""


@dataclass
class Lineup:
    """The systems that could be loaded, and why the others could not."""

    systems: list[System]
    unavailable: dict[str, str]
    settings: dict[str, Any]

    def get(self, key: str) -> System | None:
        """The system called `key`, if it was loaded."""
        return next((s for s in self.systems if s.key == key), None)


def build_lineup(
    bundle: Path, model_dir: Path, variants: Sequence[str], threads: int | None, *, fastembed_and_floor: bool = True
) -> Lineup:
    """Load every system; model2vec, the reference, must load, the others are reported when they cannot.

    `fastembed_and_floor=False` leaves out fastembed (it runs only the models it lists) and the tokenizer floor.
    """
    systems: list[System] = []
    unavailable: dict[str, str] = {}
    settings: dict[str, Any] = {}
    for variant in variants:
        try:
            systems.append(_edge(bundle, variant, threads, settings))
        except Exception as exc:  # noqa: BLE001 - a variant that fails to load is a finding to report, not a crash
            unavailable[edge_key(variant)] = f"{type(exc).__name__}: {exc}"
    systems.append(_model2vec(model_dir))
    try:
        systems.append(laghu_system(model_dir, settings))
    except Exception as exc:  # noqa: BLE001 - missing package, or a model laghu cannot read: reported, not fatal
        unavailable[LAGHU] = f"{type(exc).__name__}: {exc}"
    if not fastembed_and_floor:
        return Lineup(systems=systems, unavailable=unavailable, settings=settings)
    try:
        systems.append(_fastembed(model_dir, settings))
    except Exception as exc:  # noqa: BLE001 - missing package, or a fastembed that wants files it cannot get offline
        unavailable[FASTEMBED] = f"{type(exc).__name__}: {exc}"
    systems.append(_floor(bundle))
    return Lineup(systems=systems, unavailable=unavailable, settings=settings)


def _edge(bundle: Path, variant: str, threads: int | None, settings: dict[str, Any]) -> System:
    from m2v_edge.runtime import EdgeEmbedder

    embedder = EdgeEmbedder(bundle, variant=variant, threads=threads)
    options = embedder.session.get_session_options()
    settings[edge_key(variant)] = {
        "profile": embedder.profile.name,
        "intra_op_threads": options.intra_op_num_threads,
        "token_budget": embedder.token_budget,
        "graph": str(bundle / f"model.{variant}.onnx"),
    }
    return System(
        key=edge_key(variant),
        encode=embedder.encode,
        vectors=embedder.encode,
        description=f"`EdgeEmbedder(bundle, variant={variant!r}, threads={threads!r}).encode(texts)`",
    )


def _float32(encode: Callable[[list[str]], Any]) -> Callable[[list[str]], np.ndarray]:
    """`encode` with its result as one float32 array (model2vec returns float64 for some models, fastembed a list)."""

    def vectors(texts: list[str]) -> np.ndarray:
        return np.asarray(encode(texts), dtype=np.float32)

    return vectors


def _model2vec(model_dir: Path) -> System:
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(str(model_dir))
    return System(
        key=REFERENCE,
        encode=model.encode,
        vectors=_float32(model.encode),
        description="`StaticModel.from_pretrained(model_dir).encode(texts)` (defaults: batch 1024)",
    )


def laghu_system(model_dir: Path, settings: dict[str, Any], key: str = LAGHU) -> System:
    """laghu as its README loads a local folder: `load(folder)`, here with `fallback=False` so that a model laghu
    cannot read is reported instead of being measured as model2vec under laghu's name."""
    import laghu
    from laghu import load

    model = load(str(model_dir), fallback=False)
    settings[key] = laghu_settings(model)
    return System(
        key=key,
        encode=model.encode,
        vectors=_float32(model.encode),
        description=f"laghu {laghu.__version__}: `load(model_dir, fallback=False).encode(texts)` (default batch 1024)",
    )


def laghu_settings(model: Any) -> dict[str, Any]:
    """Which tokenizer laghu chose for a loaded model: its Rust core (laghu-rs), its Python Unigram, or tokenizers."""
    tokenizer = model.tokenizer
    rust = getattr(tokenizer, "rs", None) is not None
    if rust:
        kind = f"laghu-rs ({type(tokenizer.rs).__name__})"
    else:
        kind = "laghu's Unigram in Python" if model.lean else "tokenizers"
    return {"tokenizes_with": kind, "table": f"{len(model.embedding)}x{model.dim} {model.embedding_dtype}"}


def _fastembed(model_dir: Path, settings: dict[str, Any]) -> System:
    from fastembed import TextEmbedding

    embedding = TextEmbedding(FASTEMBED_MODEL, specific_model_path=str(model_dir))
    inner = type(embedding.model)
    settings[FASTEMBED] = {"class": f"{inner.__module__}.{inner.__qualname__}", "specific_model_path": str(model_dir)}

    def encode(texts: list[str]) -> list[np.ndarray]:
        return list(embedding.embed(texts))

    return System(
        key=FASTEMBED,
        encode=encode,
        vectors=_float32(encode),
        description=(
            f"`list(TextEmbedding({FASTEMBED_MODEL!r}, specific_model_path=model_dir).embed(texts))` "
            f"(defaults: batch 256, no parallel workers; runs {inner.__name__})"
        ),
    )


def _floor(bundle: Path) -> System:
    from tokenizers import Tokenizer

    from m2v_edge.bundle import read_manifest

    manifest = read_manifest(bundle)
    tokenizer = Tokenizer.from_file(str(bundle / manifest.tokenizer.file))
    tokenizer.no_padding()
    if manifest.max_length is not None:
        tokenizer.enable_truncation(manifest.max_length)
    limit = manifest.char_limit

    def prepare(texts: list[str]) -> list[str]:
        return texts if limit is None else [text[:limit] for text in texts]

    def encode(texts: list[str]) -> list[Any]:
        return tokenizer.encode_batch_fast(texts, add_special_tokens=False)

    return System(
        key=FLOOR,
        encode=encode,
        prepare=prepare,
        description=(
            f"`Tokenizer.from_file(bundle/tokenizer.json)`, truncation {manifest.max_length}, "
            f"`encode_batch_fast(texts, add_special_tokens=False)` on texts pre-cut to {limit} characters"
        ),
    )
