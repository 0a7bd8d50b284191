"""Reading a Model2Vec model, from a local folder or the Hugging Face Hub, into a `ModelSource`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from m2v_edge.bundle import sha256_file
from m2v_edge.errors import MissingExtraError, SourceModelError

DEFAULT_MAX_LENGTH = 512
"""model2vec's `max_length` when the config does not set one."""


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
LICENCE_PATTERN = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE|ATTRIBUTION)", re.IGNORECASE)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
TABLE_DTYPES = (np.float32, np.float16, np.float64, np.int8)


@dataclass(frozen=True)
class ModelSource:
    """Everything export needs from a Model2Vec model."""

    source_id: str
    revision: str | None
    folder: Path
    table: np.ndarray
    weights: np.ndarray | None
    mapping: np.ndarray | None
    tokenizer_json: dict[str, Any]
    config: dict[str, Any]
    weights_sha256: str
    licence_files: tuple[Path, ...]
    overrides: dict[str, Any] = field(default_factory=dict)
    """Config keys the exporter was told to replace (already applied to `config`)."""

    @property
    def normalize(self) -> bool:
        """model2vec's rule: the config's `normalize`, false when absent."""
        return bool(self.config.get("normalize", False))

    @property
    def max_length(self) -> int | None:
        """model2vec's rule: the config's `max_length` (None disables truncation), 512 when absent."""
        value = self.config.get("max_length", DEFAULT_MAX_LENGTH)
        return None if value is None else int(value)


def load_source(
    source: str | Path, *, revision: str | None = None, token: str | None = None, subfolder: str | None = None
) -> ModelSource:
    """Read a Model2Vec model from a local folder or a Hub id (`org/name`), or from a `subfolder` of either (as
    model2vec's `from_pretrained(..., subfolder=...)` does)."""
    parts = _subfolder_parts(subfolder)
    path = Path(source)
    if path.exists():
        if not path.is_dir():
            raise SourceModelError(f"{path} is a file; pass the Model2Vec model's folder")
        folder = path.joinpath(*parts)
        if not folder.is_dir():
            raise SourceModelError(f"{path} has no subfolder {subfolder!r}")
        return _read_folder(folder.resolve(), source_id=folder.resolve().name, revision=None)
    if not HUB_ID.match(str(source)):
        raise SourceModelError(f"{source} is neither an existing folder nor a Hub id like 'minishlab/potion-base-8M'")
    snapshot = _download(str(source), revision=revision, token=token, prefix="".join(f"{p}/" for p in parts))
    folder = snapshot.joinpath(*parts)
    if not folder.is_dir():
        raise SourceModelError(f"Hub model {source} has no Model2Vec files in subfolder {subfolder!r}")
    return _read_folder(folder, source_id=str(source), revision=snapshot.name)


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


def _download(repo_id: str, *, revision: str | None, token: str | None, prefix: str = "") -> Path:
    """Fetch (or find in the standard cache) the files of a Hub model, under `prefix` in the repository, and return
    the snapshot folder; honours HF_HUB_OFFLINE."""
    try:
        import huggingface_hub
        from huggingface_hub import constants as hub_constants
        from huggingface_hub import errors as hub_errors
    except ImportError:
        raise MissingExtraError("export", "exporting from the Hugging Face Hub") from None
    patterns = sorted({name for layout in LAYOUTS for name in (layout.config, layout.weights, layout.tokenizer)})
    patterns += ["README.md", "LICENSE*", "LICENCE*", "NOTICE*", "ATTRIBUTION*", "COPYING*"]
    patterns = [prefix + pattern for pattern in patterns]
    # Offline, look in the cache only: without this, huggingface_hub (1.x) resolves a commit-hash revision by
    # listing the repo tree online unless a trees/<commit>.json listing happens to be cached, and fails.
    offline = bool(getattr(hub_constants, "HF_HUB_OFFLINE", False))
    try:
        return Path(
            huggingface_hub.snapshot_download(
                repo_id, revision=revision, token=token, allow_patterns=patterns, local_files_only=offline
            )
        )
    except (hub_errors.RepositoryNotFoundError, hub_errors.GatedRepoError):
        raise SourceModelError(
            f"Hub model {repo_id} was not found or is private/gated: check the id, or pass a token (--token / HF_TOKEN)"
        ) from None
    except hub_errors.RevisionNotFoundError:
        raise SourceModelError(f"Hub model {repo_id} has no revision {revision!r}") from None
    except hub_errors.LocalEntryNotFoundError:
        raise SourceModelError(
            f"Hub model {repo_id} (revision {revision or 'main'}) is not in the local cache and the Hub cannot be "
            "reached (offline or HF_HUB_OFFLINE=1): connect once, or pass a local folder"
        ) from None
    except (hub_errors.HfHubHTTPError, OSError) as exc:
        raise SourceModelError(f"cannot download {repo_id} from the Hub: {exc}") from None


def _read_folder(folder: Path, *, source_id: str, revision: str | None) -> ModelSource:
    layout = _find_layout(folder)
    weights_path = folder / layout.weights
    tensors = _read_tensors(weights_path)
    table = tensors.get(layout.table_tensor)
    if table is None:
        raise SourceModelError(
            f"{weights_path} has no tensor {layout.table_tensor!r} (found: {', '.join(sorted(tensors)) or 'none'})"
        )
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] == 0:
        raise SourceModelError(f"{weights_path}: tensor {layout.table_tensor!r} must be 2-D, got shape {table.shape}")
    if table.dtype not in TABLE_DTYPES:
        raise SourceModelError(
            f"{weights_path}: table dtype {table.dtype} is not supported (float32, float16, float64 or int8)"
        )
    tokenizer_json = _read_json(folder / layout.tokenizer)
    config = _read_json(folder / layout.config)
    vocab_size = _vocab_size(tokenizer_json, folder / layout.tokenizer)
    weights, mapping = tensors.get("weights"), tensors.get("mapping")
    _check_sizes(weights_path, table, weights, mapping, vocab_size)
    licences = tuple(sorted(p for p in folder.iterdir() if p.is_file() and LICENCE_PATTERN.match(p.name)))
    return ModelSource(
        source_id=source_id,
        revision=revision,
        folder=folder,
        table=table,
        weights=weights,
        mapping=mapping,
        tokenizer_json=tokenizer_json,
        config=config,
        weights_sha256=sha256_file(weights_path),
        licence_files=licences,
    )


def _find_layout(folder: Path) -> Layout:
    for layout in LAYOUTS:
        if all((folder / name).is_file() for name in (layout.config, layout.weights, layout.tokenizer)):
            return layout
    tried = "; ".join(f"{l.config} + {l.weights} + {l.tokenizer}" for l in LAYOUTS)
    raise SourceModelError(f"{folder} is not a Model2Vec model: none of the layouts was found ({tried})")


def _read_tensors(path: Path) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise MissingExtraError("export", "export") from None
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own untyped errors for corrupt files
        raise SourceModelError(f"cannot read {path}: {exc}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SourceModelError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SourceModelError(f"{path} must hold a JSON object")
    return data


def _vocab_size(tokenizer_json: dict[str, Any], path: Path) -> int:
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(json.dumps(tokenizer_json))
    except Exception as exc:  # tokenizers raises plain Exception for malformed files
        raise SourceModelError(f"{path} is not a valid tokenizers file: {exc}") from None
    return len(tokenizer.get_vocab())


def _check_sizes(
    path: Path, table: np.ndarray, weights: np.ndarray | None, mapping: np.ndarray | None, vocab_size: int
) -> None:
    rows = table.shape[0]
    if mapping is None and rows != vocab_size:
        raise SourceModelError(
            f"{path}: the table has {rows} rows but the tokenizer has {vocab_size} tokens; "
            "the model folder mixes files of different models"
        )
    if mapping is not None:
        if mapping.ndim != 1 or mapping.shape[0] != vocab_size or mapping.dtype.kind not in "iu":
            raise SourceModelError(
                f"{path}: 'mapping' must be an integer vector of {vocab_size} entries (one per token), "
                f"got {mapping.dtype} {mapping.shape}"
            )
        if vocab_size and (mapping.min() < 0 or mapping.max() >= rows):
            raise SourceModelError(f"{path}: 'mapping' points outside the table's {rows} rows")
    if weights is not None and (weights.ndim != 1 or weights.shape[0] != vocab_size or weights.dtype.kind != "f"):
        raise SourceModelError(
            f"{path}: 'weights' must be a float vector of {vocab_size} entries (one per token), "
            f"got {weights.dtype} {weights.shape}"
        )
