"""A Model2Vec folder of potion-multilingual-128M's shape, built offline (the Hub is unreachable here).

`minishlab/potion-multilingual-128M` has a 500,353-piece Unigram tokenizer and a 500,353 x 256 float32 table. This
module builds a model of that shape from the real multilingual Unigram pipeline shipped in the PyPI package
`tokenlearn-static-model` (`static_model/model/tokenizer.json`: 276,326 pieces, Precompiled normalizer,
WhitespaceSplit + Metaspace pre-tokenizers), extended with made-up pieces, and a seeded random table. The bench and the
tests call `build_multilingual_model`; its output (512 MB at full size) is never committed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

PIECES = 500_353
"""potion-multilingual-128M's vocabulary size."""
DIM = 256
TOKENLEARN_PACKAGE = "static_model"
"""The import name of the PyPI package `tokenlearn-static-model`."""


def tokenlearn_tokenizer_file() -> Path:
    """The real multilingual Unigram tokenizer.json of `tokenlearn-static-model` (located without importing it)."""
    spec = importlib.util.find_spec(TOKENLEARN_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the multilingual model is built from the package tokenlearn-static-model: "
            "pip install tokenlearn-static-model (part of m2v-edge's dev extra)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: tokenlearn-static-model's tokenizer is missing; reinstall the package")
    return path


def build_multilingual_model(folder: str | Path, pieces: int = PIECES, dim: int = DIM, seed: int = 0) -> Path:
    """Write a Model2Vec folder (layout 1: config.json, model.safetensors, tokenizer.json) into `folder`.

    The tokenizer is tokenlearn-static-model's Unigram pipeline unchanged except for its vocabulary: its first
    `pieces` pieces when it has more, otherwise all of them followed by new pieces, each a word-initial piece
    (``▁...``) joined to a continuation piece, scored below every real piece (so that each is used where it occurs,
    as a longer piece is in a larger real vocabulary). The table is `pieces` x `dim` float32, standard normal,
    with `config.json` asking for normalisation. The same arguments give the same bytes.

    :return: the folder.
    """
    if pieces < 4 or dim < 1:
        raise ValueError(f"pieces must be >= 4 (the unknown-token id is 3) and dim >= 1, got {pieces}, {dim}")
    rng = np.random.default_rng(seed)
    tokenizer = json.loads(tokenlearn_tokenizer_file().read_text(encoding="utf-8"))
    vocab = tokenizer["model"]["vocab"]
    tokenizer["model"]["vocab"] = vocab[:pieces] + _new_pieces(vocab, pieces - len(vocab), rng)
    table = rng.standard_normal((pieces, dim), dtype=np.float32)

    from safetensors.numpy import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    config = {"model_type": "model2vec", "architectures": ["StaticModel"], "hidden_dim": dim, "normalize": True}
    (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_file({"embeddings": table}, str(out / "model.safetensors"))
    return out


def _new_pieces(vocab: list[list], count: int, rng: np.random.Generator) -> list[list]:
    """`count` new [piece, score] pairs absent from `vocab`: word-initial + continuation pieces joined."""
    if count <= 0:
        return []
    starts = [piece for piece, _ in vocab if piece.startswith("▁") and len(piece) > 1]
    rests = [piece for piece, _ in vocab if not piece.startswith("▁") and piece.isalpha()]
    lowest = min(score for _, score in vocab)
    taken = {piece for piece, _ in vocab}
    new: list[list] = []
    while len(new) < count:
        wanted = count - len(new)
        for a, b, drop in zip(rng.integers(len(starts), size=wanted), rng.integers(len(rests), size=wanted),
                              rng.uniform(0.0, 1.0, size=wanted)):
            piece = starts[a] + rests[b]
            if piece not in taken:
                taken.add(piece)
                new.append([piece, lowest - float(drop)])
    return new
