"""The source's tokenizer, loaded once, as the bundle stores it, with what the manifest records about it.

Loading a tokenizer is the costliest step of exporting a large vocabulary (a 500,353-piece Unigram takes about
2.4 s and 800 MB, which the allocator keeps), so it happens once: the loaded `Tokenizer` and its parsed JSON serve
the manifest's facts here and the native core's compilation and check (`m2v_edge.export.tokenizer_core`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from m2v_edge.errors import SourceModelError


@dataclass(frozen=True)
class SourceTokenizer:
    """A source tokenizer ready for the bundle."""

    tokenizer: Tokenizer
    """The tokenizer, padding and truncation turned off (model2vec turns both off)."""
    text: str
    """tokenizer.json as the bundle stores it: `tokenizer` as `tokenizers` writes it (compact: no indentation)."""
    spec: dict[str, Any]
    """`text`, parsed."""
    tokens: int
    """How many tokens the vocabulary has."""
    ids: int
    """The largest token id + 1 (more than `tokens` when the ids have gaps): the rows every per-id tensor needs."""
    unk_id: int | None
    pad_id: int
    """The id placed in padding positions (masked out by the graph): the source's own pad id if it pads."""
    median_token_length: int
    """model2vec's median token length (characters per token), over the vocabulary with added tokens."""


def read_tokenizer(text: str, path: Path) -> SourceTokenizer:
    """Load a tokenizer.json's `text` (read from `path`, named in errors); a file `tokenizers` cannot load is a
    `SourceModelError`."""
    try:
        tokenizer = Tokenizer.from_str(text)
    except Exception as exc:  # tokenizers raises plain Exception for malformed files
        raise SourceModelError(f"{path} is not a valid tokenizers file: {exc}") from None
    padding = tokenizer.padding
    tokenizer.no_padding()
    tokenizer.no_truncation()
    text = tokenizer.to_str()  # 7x faster than json.dumps on a 500k-piece vocabulary
    spec = json.loads(text)
    vocab = tokenizer.get_vocab()
    unk_id = _unk_id(tokenizer, spec)
    return SourceTokenizer(
        tokenizer=tokenizer,
        text=text,
        spec=spec,
        tokens=len(vocab),
        ids=max(vocab.values(), default=-1) + 1,
        unk_id=unk_id,
        pad_id=padding["pad_id"] if padding else unk_id if unk_id is not None else 0,
        median_token_length=int(np.median([len(token) for token in vocab])) if vocab else 0,
    )


def _unk_id(tokenizer: Tokenizer, spec: dict[str, Any]) -> int | None:
    """model2vec's rule: the model's `unk_token` (WordPiece, BPE, WordLevel) or `unk_id` (Unigram)."""
    model = tokenizer.model
    if hasattr(model, "unk_token"):
        return None if model.unk_token is None else tokenizer.token_to_id(model.unk_token)
    unk = spec["model"].get("unk_id")
    return None if unk is None else int(unk)
