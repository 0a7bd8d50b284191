"""Which path turns a bundle's texts into token ids. Every path gives tokenizers' ids; they differ in speed and memory.

- ``native``: the compiled core over the bundle's mapped `tokenizer.m2v` (`m2v_edge.runtime.native`), when the export
  found that the core reproduces the tokenizer and wrote the file, and this installation's core is the same version.
- ``python``: the pure-Python exact ASCII fast path for BERT-style WordPiece (`m2v_edge.runtime.ascii_wordpiece`),
  tokenizers for every other text (`m2v_edge.runtime.tokens`).
- ``tokenizers``: every text through tokenizers.
- ``auto`` (the default): native where it can be used, else python (or tokenizers where the profile turns the ASCII
  fast path off). The reason a bundle cannot use the native core is logged once, at INFO. The environment variable
  ``M2V_EDGE_NATIVE=0`` turns the native core off (`m2v_edge.runtime.native.available`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from m2v_edge.bundle import Manifest, verify_file, verify_tokenizer
from m2v_edge.errors import BundleError
from m2v_edge.runtime import native
from m2v_edge.runtime.token_batch import TokenBatch

logger = logging.getLogger(__name__)

TokenizingPath = Literal["auto", "native", "python", "tokenizers"]
PATHS = ("auto", "native", "python", "tokenizers")

_logged: set[tuple[str, str]] = set()


class BundleTokenizing(Protocol):
    """What every path offers (`NativeTokenizer`, `BundleTokenizer`)."""

    max_length: int | None

    def tokenize(self, texts: list[str]) -> TokenBatch: ...

    def tokenize_one(self, text: str) -> list[int]: ...


def native_refusal(bundle_dir: Path, manifest: Manifest) -> str:
    """Why the native core cannot tokenize this bundle here ("" when it can)."""
    core = manifest.core_tokenizer
    if not native.available():
        return native.unavailable_reason()
    if core is None:
        return "the bundle was exported before the native core existed: export it again to use it"
    if core.file is None:
        return core.reason
    if core.core_version != native.core_version():
        return (
            f"the bundle's tokenizer.m2v was checked with native core version {core.core_version}, and this "
            f"m2v-edge has version {native.core_version()}: export the bundle again to use the core"
        )
    return ""


TOKENIZERS_MEMORY_PER_FILE_BYTE = 25
"""tokenizers' private memory per byte of tokenizer.json, at worst (measured: 515 MiB for a 500,353-piece Unigram
of 20.5 MB, 309 MiB for tokenlearn's 276k pieces; a WordPiece takes about 14x)."""


@dataclass(frozen=True)
class PathChoice:
    """Which path a bundle's texts take, decided before anything is loaded."""

    path: str
    """native, python or tokenizers (python where the ASCII fast path may apply; tokenizers decides per text)."""
    why: str
    """The reason the native core is not used ("" when it is)."""


def choose_path(
    bundle_dir: Path,
    manifest: Manifest,
    path: TokenizingPath = "auto",
    *,
    ascii_fast_path: bool = True,
    fallback_limit_mib: int | None = None,
) -> PathChoice:
    """The path `open_tokenizer` takes for these arguments (see it); `m2v-edge profile detect --bundle` shows it.

    :raises BundleError: ``native`` cannot be used here, or ``auto`` would fall back to a tokenizers load bigger than
        `fallback_limit_mib`.
    """
    if path not in PATHS:
        raise ValueError(f"tokenizing must be one of {', '.join(PATHS)}, got {path!r}")
    if path in ("python", "tokenizers"):
        return PathChoice(path, f"tokenizing={path!r} was asked for")
    refusal = native_refusal(bundle_dir, manifest)
    if not refusal:
        return PathChoice("native", "")
    if path == "native":
        raise BundleError(f"bundle {bundle_dir} cannot use the native core: {refusal}")
    _check_fallback_size(bundle_dir, manifest, refusal, fallback_limit_mib)
    return PathChoice("python" if ascii_fast_path else "tokenizers", refusal)


def open_tokenizer(
    bundle_dir: Path,
    manifest: Manifest,
    *,
    path: TokenizingPath = "auto",
    ascii_fast_path: bool = True,
    threads: int = 1,
    fallback_limit_mib: int | None = None,
) -> BundleTokenizing:
    """The tokenizer of a bundle along `path` (see the module docstring).

    :param ascii_fast_path: for ``auto`` without the native core: False takes tokenizers instead of python.
    :param threads: threads the native core shares a batch among.
    :param fallback_limit_mib: for ``auto`` without the native core: refuse a tokenizer.json that tokenizers would
        hold in more than this many MiB (the profile's `fallback_tokenizer_mib`); None for no limit.
    :raises BundleError: ``native`` was asked for and cannot be used here, or ``auto`` would fall back to a
        tokenizers load bigger than `fallback_limit_mib` (the message says why and what to do).
    """
    choice = choose_path(
        bundle_dir, manifest, path, ascii_fast_path=ascii_fast_path, fallback_limit_mib=fallback_limit_mib
    )
    if choice.path == "native":
        assert manifest.core_tokenizer is not None and manifest.core_tokenizer.file is not None
        file = verify_file(bundle_dir, manifest.core_tokenizer.file)
        tokenizer = native.NativeTokenizer(file, manifest.max_length, threads=threads)
        if tokenizer.id_limit != manifest.vocab_size:  # its ids would index past the table, or another vocabulary
            raise BundleError(
                f"{file} was compiled for a table of {tokenizer.id_limit} rows but this bundle's has "
                f"{manifest.vocab_size} (manifest vocab_size): the file does not belong to this bundle; "
                "re-export the bundle or copy it again"
            )
        _log_once(bundle_dir, "tokenizes with the native core")
        return tokenizer
    if path == "auto":
        _log_once(bundle_dir, f"tokenizes through tokenizers, not the native core: {choice.why}")
    from m2v_edge.runtime.tokens import BundleTokenizer  # imported here: the native path never loads tokenizers

    return BundleTokenizer(
        verify_tokenizer(bundle_dir, manifest), manifest.max_length, ascii_fast_path=choice.path == "python"
    )


def single_text_pooler(
    bundle_dir: Path, manifest: Manifest, variant: str, tokenizer: BundleTokenizing
) -> native.NativePooler | None:
    """The core's single-text pooler for a native tokenizer and a format-3 variant (its arrays in the data file);
    None otherwise (single texts then go through onnxruntime)."""
    entry = manifest.tables.get(variant)
    if not isinstance(tokenizer, native.NativeTokenizer) or entry is None or not entry.arrays:
        return None
    from m2v_edge.runtime.table import VariantTable

    return native.NativePooler(tokenizer, VariantTable(bundle_dir, manifest, variant))


def path_name(tokenizer: BundleTokenizing) -> str:
    """The path a tokenizer from `open_tokenizer` takes: native, python or tokenizers."""
    if isinstance(tokenizer, native.NativeTokenizer):
        return "native"
    return "python" if getattr(tokenizer, "fast_path", None) is not None else "tokenizers"


def _check_fallback_size(bundle_dir: Path, manifest: Manifest, refusal: str, limit_mib: int | None) -> None:
    estimate = manifest.tokenizer.size * TOKENIZERS_MEMORY_PER_FILE_BYTE / (1 << 20)
    if limit_mib is None or estimate <= limit_mib:
        return
    raise BundleError(
        f"bundle {bundle_dir} cannot use the native core here ({refusal}), and tokenizers would hold its "
        f"{manifest.tokenizer.size / 1e6:.1f} MB tokenizer.json in about {estimate:.0f} MiB, more than this device "
        f"profile allows (fallback_tokenizer_mib = {limit_mib}): install m2v-edge with its native core (a wheel "
        "for this platform, or a C compiler for the source build), or pass tokenizing='tokenizers' to try anyway"
    )


def _log_once(bundle_dir: Path, what: str) -> None:
    key = (str(bundle_dir), what)
    if key not in _logged:
        _logged.add(key)
        logger.info("bundle %s %s", bundle_dir, what)
