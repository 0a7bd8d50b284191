"""Reading a Model2Vec model, from a local folder or the Hugging Face Hub, into a `ModelSource`."""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from m2v_edge.bundle import sha256_file
from m2v_edge.errors import SourceModelError
from m2v_edge.export.hub import download
from m2v_edge.export.source_table import SourceTable, read_tensors
from m2v_edge.export.source_tokenizer import SourceTokenizer, read_tokenizer

DEFAULT_MAX_LENGTH = 512
"""model2vec's `max_length` when the config does not set one."""


class FromConfig(enum.Enum):
    """The type of `FROM_CONFIG`."""

    FROM_CONFIG = "from the model's config"


FROM_CONFIG = FromConfig.FROM_CONFIG
"""`max_length=FROM_CONFIG`, the default: the source's config decides (None means no truncation)."""


@dataclass(frozen=True)
class Layout:
    """One of the three Model2Vec folder layouts, tried in model2vec's order."""

    config: str
    weights: str
    tokenizer: str
    table_tensor: str


LAYOUTS = (
    Layout("config.json", "model.safetensors", "tokenizer.json", "embeddings"),
    Layout("config_sentence_transformers.json", "model.safetensors", "tokenizer.json", "embedding.weight"),
    Layout(
        "config_sentence_transformers.json",
        "0_StaticEmbedding/model.safetensors",
        "0_StaticEmbedding/tokenizer.json",
        "embedding.weight",
    ),
)
LICENCE_NAMES = ("LICENSE", "LICENCE", "COPYING", "NOTICE", "ATTRIBUTION")
"""Files whose name starts with one of these, in any case, are licence files copied into the bundle."""
LICENCE_PATTERN = re.compile(f"^({'|'.join(LICENCE_NAMES)})", re.IGNORECASE)
LICENCE_GLOBS = tuple("".join(f"[{c.upper()}{c.lower()}]" for c in name) + "*" for name in LICENCE_NAMES)
"""The same names as case-insensitive globs (huggingface_hub matches download patterns case-sensitively)."""
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    """Everything export needs from a Model2Vec model."""

    source_id: str
    revision: str | None
    folder: Path
    table: SourceTable
    """The table, read in blocks of rows (`bfloat16` tables and weights are read as float32, exactly)."""
    weights: np.ndarray | None
    mapping: np.ndarray | None
    tokenizer: SourceTokenizer
    config: dict[str, Any]
    weights_sha256: str
    licence_files: tuple[Path, ...]
    overrides: dict[str, Any] = field(default_factory=dict)
    """Config keys the caller replaced (already applied to `config`)."""

    @property
    def vocab_size(self) -> int:
        """The number of token ids (largest id + 1): the rows every per-token tensor has."""
        return self.tokenizer.ids

    @property
    def normalize(self) -> bool:
        """model2vec's rule: the config's `normalize`, false when absent."""
        return bool(self.config.get("normalize", False))

    @property
    def max_length(self) -> int | None:
        """model2vec's rule: the config's `max_length` (None disables truncation), 512 when absent; a JSON `true`
        counts as 1, as in model2vec (checked when the source is read)."""
        value = self.config.get("max_length", DEFAULT_MAX_LENGTH)
        return None if value is None else int(value)


def load_source(
    source: str | Path,
    *,
    revision: str | None = None,
    token: str | None = None,
    subfolder: str | None = None,
    normalize: bool | None = None,
    max_length: int | None | FromConfig = FROM_CONFIG,
) -> ModelSource:
    """Read a Model2Vec model from a local folder or a Hub id (`org/name`), or from a `subfolder` of either (as
    model2vec's `from_pretrained(..., subfolder=...)` does).

    `normalize` (unless None) and `max_length` (unless FROM_CONFIG) replace the config's values; a config
    `max_length` that is replaced is not checked. With a subfolder that holds no licence files, those at the root of
    the folder or repository are taken.
    """
    overrides: dict[str, Any] = {}
    if normalize is not None:
        overrides["normalize"] = normalize
    if max_length is not FROM_CONFIG:
        overrides["max_length"] = max_length
    parts = _subfolder_parts(subfolder)
    path = Path(source)
    if path.exists():
        if not path.is_dir():
            raise SourceModelError(f"{path} is a file; pass the Model2Vec model's folder")
        folder = path.joinpath(*parts)
        if not folder.is_dir():
            raise SourceModelError(f"{path} has no subfolder {subfolder!r}")
        return _read_folder(
            folder.resolve(), source_id=folder.resolve().name, revision=None, root=path.resolve(), overrides=overrides
        )
    if not HUB_ID.match(str(source)):
        raise SourceModelError(f"{source} is neither an existing folder nor a Hub id like 'minishlab/potion-base-8M'")
    prefix = "".join(f"{p}/" for p in parts)
    names = sorted({name for layout in LAYOUTS for name in (layout.config, layout.weights, layout.tokenizer)})
    patterns = [prefix + name for name in (*names, "README.md", *LICENCE_GLOBS)]
    patterns += list(LICENCE_GLOBS) if prefix else []  # the repository's own licence, used if the subfolder has none
    snapshot = download(str(source), revision=revision, token=token, patterns=patterns)
    folder = snapshot.joinpath(*parts)
    if not folder.is_dir():
        raise SourceModelError(f"Hub model {source} has no Model2Vec files in subfolder {subfolder!r}")
    return _read_folder(folder, source_id=str(source), revision=snapshot.name, root=snapshot, overrides=overrides)


def _subfolder_parts(subfolder: str | None) -> tuple[str, ...]:
    """The path parts of a subfolder argument; absolute paths and `..` are refused."""
    if subfolder is None or subfolder in ("", "."):
        return ()
    if not isinstance(subfolder, str):
        raise SourceModelError(f"subfolder must be a string, got {subfolder!r}")
    parts = tuple(part for part in subfolder.replace("\\", "/").split("/") if part not in ("", "."))
    if subfolder.startswith("/") or ".." in parts:
        raise SourceModelError(f"subfolder {subfolder!r} must be a relative path inside the model, without '..'")
    return parts


def _read_folder(
    folder: Path, *, source_id: str, revision: str | None, root: Path, overrides: dict[str, Any]
) -> ModelSource:
    layout = _find_layout(folder)
    weights_path = folder / layout.weights
    table, tensors = read_tensors(weights_path, layout.table_tensor)
    if table is None:
        raise SourceModelError(
            f"{weights_path} has no tensor {layout.table_tensor!r} (found: {', '.join(sorted(tensors)) or 'none'})"
        )
    config_path = folder / layout.config
    config = _read_json(config_path)
    if "max_length" not in overrides:
        _check_max_length(config, config_path)
    tokenizer_path = folder / layout.tokenizer
    tokenizer = read_tokenizer(_read_text(tokenizer_path), tokenizer_path)
    weights, mapping = tensors.get("weights"), tensors.get("mapping")
    _check_sizes(weights_path, tokenizer_path, table, weights, mapping, tokenizer.tokens, tokenizer.ids)
    return ModelSource(
        source_id=source_id,
        revision=revision,
        folder=folder,
        table=table,
        weights=weights,
        mapping=mapping,
        tokenizer=tokenizer,
        config={**config, **overrides},
        weights_sha256=sha256_file(weights_path),
        licence_files=_licence_files(folder) or _licence_files(root),
        overrides=overrides,
    )


def _licence_files(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted(p for p in folder.iterdir() if p.is_file() and LICENCE_PATTERN.match(p.name)))


def _find_layout(folder: Path) -> Layout:
    for layout in LAYOUTS:
        if all((folder / name).is_file() for name in (layout.config, layout.weights, layout.tokenizer)):
            return layout
    tried = "; ".join(f"{l.config} + {l.weights} + {l.tokenizer}" for l in LAYOUTS)
    raise SourceModelError(f"{folder} is not a Model2Vec model: none of the layouts was found ({tried})")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read_text(path))
    except ValueError as exc:
        raise SourceModelError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SourceModelError(f"{path} must hold a JSON object")
    return data


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceModelError(f"cannot read {path}: {exc}") from None


def _check_max_length(config: dict[str, Any], path: Path) -> None:
    """model2vec's `max_length` is null or a token count; it fails on other types, and a count below 1 keeps no
    token (0) or cannot be used (negative). A JSON `true` is 1 in Python, and to model2vec."""
    value = config.get("max_length", DEFAULT_MAX_LENGTH)
    if value is None or (isinstance(value, int) and value >= 1):
        return
    raise SourceModelError(
        f"{path}: max_length must be null (no truncation) or a whole number of tokens >= 1, got {json.dumps(value)}; "
        f"fix max_length in {path.name}, or override it with --max-length N (max_length=N in Python)"
    )


def _check_sizes(
    path: Path,
    tokenizer_path: Path,
    table: SourceTable,
    weights: np.ndarray | None,
    mapping: np.ndarray | None,
    tokens: int,
    ids: int,
) -> None:
    """model2vec's rules: without a mapping, one table row per token; the tensors it indexes by token id (the
    table, or the mapping; the weights) need a row for every id (more than one per token when the ids have gaps:
    `tokens` < `ids`); a mapping points inside the table."""
    rows = table.shape[0]
    if mapping is None and rows != tokens:
        raise SourceModelError(
            f"{path}: the table has {rows} rows but the tokenizer has {tokens} tokens; "
            "the model folder mixes files of different models"
        )
    by_id = {"'mapping'": mapping} if mapping is not None else {"the table": table}
    short = [
        f"{name} {tensor.shape[0]}"
        for name, tensor in {**by_id, "'weights'": weights}.items()
        if tensor is not None and len(tensor.shape) and tensor.shape[0] < ids
    ]
    if tokens < ids and short:  # the tokens with the largest ids have no row; model2vec fails on them too
        raise SourceModelError(
            f"{tokenizer_path}: the token ids have gaps ({tokens} tokens, ids up to {ids - 1}), but the rows in "
            f"{path} ({', '.join(short)}) are one per token, not one per id; renumber the tokens 0 to {tokens - 1} "
            f"in {tokenizer_path.name}"
            + (f", or give those tensors {ids} rows" if mapping is not None else "")
        )
    if mapping is not None:
        if mapping.ndim != 1 or mapping.shape[0] != ids or mapping.dtype.kind not in "iu":
            raise SourceModelError(
                f"{path}: 'mapping' must be an integer vector of {ids} entries (one per token id), "
                f"got {mapping.dtype} {mapping.shape}"
            )
        if ids and (mapping.min() < 0 or mapping.max() >= rows):
            raise SourceModelError(f"{path}: 'mapping' points outside the table's {rows} rows")
    if weights is not None and (weights.ndim != 1 or weights.shape[0] != ids or weights.dtype.kind != "f"):
        raise SourceModelError(
            f"{path}: 'weights' must be a float vector of {ids} entries (one per token id), "
            f"got {weights.dtype} {weights.shape}"
        )
