"""`Model2VecEmbeddingFunction`: a drop-in for `pymilvus.model.dense.Model2VecEmbeddingFunction`."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from m2v_edge.bundle import DEFAULT_VARIANTS, MANIFEST_FILE, Manifest, read_manifest
from m2v_edge.errors import MissingExtraError
from m2v_edge.models import installed_bundle
from m2v_edge.paths import cache_dir
from m2v_edge.runtime import EdgeEmbedder

logger = logging.getLogger(__name__)

_EMBEDDER_OPTIONS = ("variant", "threads", "profile", "token_budget")
_EXPORT_OPTIONS = ("revision", "token", "subfolder", "dimensionality", "normalize", "max_length", "force_download")
"""`StaticModel.from_pretrained` keywords (pymilvus passes its kwargs there), applied when exporting a source."""
_OTHER_OPTIONS = ("quantize_to", "vocabulary_quantization")
EXACT_VARIANTS = ("fp32", "fp16")
"""The default variants, most exact first: pymilvus users get model2vec's vectors unless they ask for less."""
_QUANTIZE_TO = {"float32": "fp32", "float16": "fp16", "int8": "int8", "float64": "fp32"}
"""model2vec's `quantize_to` dtypes and the bundle variant that stands for each; float64 is taken (as fp32, which
gives model2vec's float64 vectors to float32 precision) but not offered: no variant stores float64."""
_OFFERED_QUANTIZE_TO = ("float32", "float16", "int8")


class Model2VecEmbeddingFunction:
    """The pymilvus embedding-function surface (`dim`, `encode_queries`, `encode_documents`, `__call__`)
    over an `EdgeEmbedder`, with model2vec's vectors.

    :param model_source: an m2v-edge bundle folder, a Model2Vec model folder, the name of an installed model
        package (`m2v-edge models`), or a Hub id, tried in that order. Model2Vec folders and Hub ids are
        exported once into `$XDG_CACHE_HOME/m2v-edge/bundles/` (needs the `export` extra) and reused after.
    :param kwargs: `variant`, `threads`, `profile`, `token_budget` (passed to `EdgeEmbedder`; the default
        variant is the bundle's most exact one, fp32 or fp16, so the vectors are model2vec's: pass
        `variant="int8"` for the smallest footprint); and `StaticModel.from_pretrained`'s keywords, which
        pymilvus passes on: `token`, `revision`, `subfolder`, `dimensionality`, `normalize`, `max_length`
        (applied when exporting; a bundle must already match them), `quantize_to` (`"float32"`, `"float16"`
        or `"int8"`: the variant) and `force_download` (True exports the source again).
    """

    def __init__(self, model_source: str | Path = "minishlab/potion-base-8M", **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(_EMBEDDER_OPTIONS + _EXPORT_OPTIONS + _OTHER_OPTIONS))
        if unknown:
            accepted = ", ".join(_EMBEDDER_OPTIONS + _EXPORT_OPTIONS + ("quantize_to",))
            raise TypeError(f"unexpected argument(s) {', '.join(unknown)}; accepted: {accepted}")
        if kwargs.get("vocabulary_quantization") is not None:
            raise ValueError(
                "vocabulary_quantization is not supported: quantize with model2vec "
                "(StaticModel.from_pretrained(..., vocabulary_quantization=N).save_pretrained(folder)) and pass that folder"
            )
        variant = _variant(kwargs.get("variant"), kwargs.get("quantize_to"))
        options = {k: kwargs[k] for k in _EXPORT_OPTIONS if k in kwargs}
        bundle = _bundle_for(model_source, variant, **options)
        embedder_options = {k: kwargs[k] for k in _EMBEDDER_OPTIONS if k in kwargs}
        embedder_options["variant"] = variant or _most_exact(read_manifest(bundle))
        self.model_source = model_source
        self.embedder = EdgeEmbedder(bundle, **embedder_options)

    @property
    def dim(self) -> int:
        """Length of each vector."""
        return self.embedder.dim

    def encode_queries(self, queries: Sequence[str]) -> list[np.ndarray]:
        """One float32 vector per query."""
        return self.embedder.encode_queries(queries)

    def encode_documents(self, documents: Sequence[str]) -> list[np.ndarray]:
        """One float32 vector per document."""
        return self.embedder.encode_documents(documents)

    def __call__(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Same as `encode_documents`."""
        return self.embedder.encode_documents(texts)


def _variant(variant: str | None, quantize_to: Any) -> str | None:
    """The variant asked for, directly or as model2vec's `quantize_to` dtype (a string or model2vec's DType)."""
    if quantize_to is None:
        return variant
    name = str(getattr(quantize_to, "value", quantize_to)).lower()
    if name not in _QUANTIZE_TO:
        hint = "; for m2v-edge's int4 tables pass variant='int4' instead" if name == "int4" else ""
        raise ValueError(
            f"quantize_to={quantize_to!r} is not supported; choose from {', '.join(_OFFERED_QUANTIZE_TO)}{hint}"
        )
    if variant is not None and variant != _QUANTIZE_TO[name]:
        raise ValueError(f"variant={variant!r} and quantize_to={quantize_to!r} disagree; pass one of them")
    return _QUANTIZE_TO[name]


def _most_exact(manifest: Manifest) -> str | None:
    """fp32 or else fp16 when the bundle has one; otherwise None lets the device profile choose."""
    return next((v for v in EXACT_VARIANTS if v in manifest.variants), None)


def _bundle_for(model_source: str | Path, variant: str | None, **options: Any) -> Path:
    """The bundle folder for a source: itself if it is a bundle, else a cached export of it."""
    path = Path(model_source)
    if options.get("subfolder") and path.is_dir():  # a local folder: model2vec joins the two, so do we
        path = model_source = path / options.pop("subfolder")
    if (path / MANIFEST_FILE).is_file():
        return _matching(path, options)
    if not path.exists() and (installed := installed_bundle(str(model_source))) is not None:
        return _matching(installed, options)
    force = bool(options.pop("force_download", False))
    variants = tuple(dict.fromkeys(DEFAULT_VARIANTS + ((variant,) if variant else ())))
    cached = _cache_root() / _cache_key(path, str(model_source), variants, options)
    if (cached / MANIFEST_FILE).is_file() and not force:
        return cached
    try:
        from m2v_edge.export import export_model
    except ImportError:
        raise MissingExtraError(
            "export", f"{model_source} is not an m2v-edge bundle; exporting it on first use"
        ) from None
    logger.info("exporting %s once into %s", model_source, cached)
    return export_model(model_source, cached, variants=variants, overwrite=True, **options)


def _matching(bundle: Path, options: dict[str, Any]) -> Path:
    """`bundle`, after checking that it already is what the export options would make."""
    manifest = read_manifest(bundle)
    wanted = {"dimensionality": manifest.dim, "normalize": manifest.normalize, "max_length": manifest.max_length}
    for key, value in wanted.items():
        # None asks for the model's own setting, except for max_length, where it means no truncation
        given = key in options and (options[key] is not None or key == "max_length")
        if given and options[key] != value:
            raise ValueError(
                f"{key}={options[key]!r} does not match bundle {bundle} ({key} {value!r}); re-export the model with "
                f"it (m2v-edge export --help) or pass the Model2Vec model folder instead"
            )
    return bundle


def _cache_root() -> Path:
    return cache_dir() / "bundles"


def _cache_key(path: Path, source: str, variants: tuple[str, ...], options: dict[str, Any]) -> str:
    """A folder name that changes when a local source's files change, or with the Hub id and revision, and with
    the variants and export options."""
    settings = [",".join(variants)] + [f"{k}={options[k]!r}" for k in sorted(options) if k != "token"]
    if path.is_dir():
        stamp = [str(path.resolve())] + [
            f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(path.rglob("*")) if p.is_file()
        ]
        label = path.resolve().name
    else:
        stamp = [source, options.get("revision") or "main"]
        label = source.replace("/", "--")
    digest = hashlib.sha256("|".join(stamp + settings).encode()).hexdigest()[:12]
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', label)}-{digest}"
