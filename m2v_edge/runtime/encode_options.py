"""The keywords of model2vec's `StaticModel.encode`, checked and resolved for one `EdgeEmbedder.encode` call."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from m2v_edge.bundle import Manifest

logger = logging.getLogger(__name__)


class _Unset:
    """The type of `UNSET`."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""`max_length`'s default: the bundle's own truncation (None, by contrast, means no truncation), as in model2vec."""


@dataclass(frozen=True)
class EncodeOptions:
    """What one call asks for, resolved against the bundle."""

    max_length: int | None
    """Tokens kept per text, None for all."""
    char_limit: int | None
    """Characters of a text that are tokenised (model2vec's pre-truncation: `max_length * median_token_length`)."""
    normalize: bool
    """Whether vectors are L2-normalised."""
    show_progress_bar: bool


def encode_options(
    manifest: Manifest,
    *,
    show_progress_bar: bool,
    max_length: Any,
    normalize: bool | None,
    batch_size: Any,
    ignored: Mapping[str, Any],
) -> EncodeOptions:
    """Check model2vec's `encode` keywords and resolve them against the bundle's settings.

    `batch_size` is checked but does not change the batching (the token budget does); keywords model2vec's `**kwargs`
    would swallow are named in one DEBUG line. `use_multiprocessing` and `multiprocessing_threshold` need no check:
    they change nothing here.
    """
    if ignored:
        logger.debug("encode ignores %s (as model2vec's StaticModel.encode does)", ", ".join(sorted(ignored)))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if max_length is UNSET:
        max_length = manifest.max_length
    elif max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1):
        raise ValueError(f"max_length must be a whole number >= 1 (tokens) or None (no truncation), got {max_length!r}")
    if normalize is False and manifest.normalize:
        raise ValueError(
            "normalize=False: this bundle's graph normalises (the model's config says normalize: true); export the "
            "model with --no-normalize (normalize=False) for raw mean vectors"
        )
    char_limit = None if max_length is None else max_length * manifest.median_token_length
    return EncodeOptions(
        max_length=max_length,
        char_limit=char_limit,
        normalize=manifest.normalize if normalize is None else bool(normalize),
        show_progress_bar=bool(show_progress_bar),
    )
