"""`Model2VecEmbeddingFunction`: a drop-in for `pymilvus.model.dense.Model2VecEmbeddingFunction`."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from m2v_edge.bundle import MANIFEST_FILE
from m2v_edge.errors import MissingExtraError
from m2v_edge.models import installed_bundle
from m2v_edge.runtime import EdgeEmbedder

logger = logging.getLogger(__name__)

_EMBEDDER_OPTIONS = ("variant", "threads", "profile", "token_budget")
_EXPORT_OPTIONS = ("revision", "token")


class Model2VecEmbeddingFunction:
    """The pymilvus embedding-function surface (`dim`, `encode_queries`, `encode_documents`, `__call__`)
    over an `EdgeEmbedder`.

    :param model_source: an m2v-edge bundle folder, a Model2Vec model folder, the name of an installed model
        package (`m2v-edge models`), or a Hub id, tried in that order. Model2Vec folders and Hub ids are
        exported once into `$XDG_CACHE_HOME/m2v-edge/bundles/` (needs the `export` extra) and reused after.
    :param kwargs: `variant`, `threads`, `profile`, `token_budget` (passed to `EdgeEmbedder`) and
        `revision`, `token` (used when exporting from the Hub).
    """

    def __init__(self, model_source: str | Path = "minishlab/potion-base-8M", **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(_EMBEDDER_OPTIONS) - set(_EXPORT_OPTIONS))
        if unknown:
            raise TypeError(
                f"unexpected argument(s) {', '.join(unknown)}; accepted: {', '.join(_EMBEDDER_OPTIONS + _EXPORT_OPTIONS)}"
            )
        bundle = _bundle_for(model_source, **{k: kwargs[k] for k in _EXPORT_OPTIONS if k in kwargs})
        self.model_source = str(model_source)
        self.embedder = EdgeEmbedder(bundle, **{k: kwargs[k] for k in _EMBEDDER_OPTIONS if k in kwargs})

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


def _bundle_for(model_source: str | Path, *, revision: str | None = None, token: str | None = None) -> Path:
    """The bundle folder for a source: itself if it is a bundle, else a cached export of it."""
    path = Path(model_source)
    if (path / MANIFEST_FILE).is_file():
        return path
    if not path.exists() and (installed := installed_bundle(str(model_source))) is not None:
        return installed
    cached = _cache_root() / _cache_key(path, str(model_source), revision)
    if (cached / MANIFEST_FILE).is_file():
        return cached
    try:
        from m2v_edge.export import export_model
    except ImportError:
        raise MissingExtraError(
            "export", f"{model_source} is not an m2v-edge bundle; exporting it on first use"
        ) from None
    logger.info("exporting %s once into %s", model_source, cached)
    return export_model(model_source, cached, revision=revision, token=token, overwrite=True)


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "m2v-edge" / "bundles"


def _cache_key(path: Path, source: str, revision: str | None) -> str:
    """A folder name that changes when a local source's files change, or with the Hub id and revision."""
    if path.is_dir():
        stamp = [str(path.resolve())] + [
            f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(path.rglob("*")) if p.is_file()
        ]
        label = path.resolve().name
    else:
        stamp = [source, revision or "main"]
        label = source.replace("/", "--")
    digest = hashlib.sha256("|".join(stamp).encode()).hexdigest()[:12]
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', label)}-{digest}"
