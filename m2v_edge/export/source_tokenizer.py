"""The source's tokenizer as a bundle stores it, and what the manifest records about it, from one `tokenizers` load.

Loading a tokenizer is the costliest step of exporting a large vocabulary (a 500,353-piece Unigram takes about
2 s and 800 MB, which the allocator keeps), so it happens once, on the text the bundle will hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from m2v_edge.errors import SourceModelError


@dataclass(frozen=True)
class TokenizerFacts:
    """A source tokenizer ready for the bundle."""

    text: str
    """tokenizer.json as the bundle stores it: the source's tokenizer without padding and truncation (model2vec
    turns both off), as `tokenizers` writes it (compact: no indentation)."""
    tokens: int
    """How many tokens the vocabulary has."""
    ids: int
    """The largest token id + 1 (more than `tokens` when the ids have gaps): the rows every per-id tensor needs."""
    unk_id: int | None
    pad_id: int
    median_token_length: int
    """model2vec's median token length (characters per token), over the vocabulary with added tokens."""


def read_tokenizer(text: str, tokenizer_json: dict[str, Any], path: Path) -> TokenizerFacts:
    """Facts of a tokenizer.json: its `text` and the same parsed (read from `path`, named in errors); a file
    `tokenizers` cannot load is a `SourceModelError`."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(text)
    except Exception as exc:  # tokenizers raises plain Exception for malformed files
        raise SourceModelError(f"{path} is not a valid tokenizers file: {exc}") from None
    tokenizer.no_padding()
    tokenizer.no_truncation()
    vocab = tokenizer.get_vocab()
    unk_id = _unk_id(tokenizer, tokenizer_json)
    return TokenizerFacts(
        text=tokenizer.to_str(),  # 7x faster than json.dumps on a 500k-piece vocabulary
        tokens=len(vocab),
        ids=max(vocab.values(), default=-1) + 1,
        unk_id=unk_id,
        pad_id=_pad_id(tokenizer_json, unk_id),
        median_token_length=int(np.median([len(token) for token in vocab])) if vocab else 0,
    )


def _unk_id(tokenizer: Any, tokenizer_json: dict[str, Any]) -> int | None:
    """model2vec's rule: the model's `unk_token` (WordPiece, BPE, WordLevel) or `unk_id` (Unigram)."""
    model = tokenizer.model
    if hasattr(model, "unk_token"):
        return None if model.unk_token is None else tokenizer.token_to_id(model.unk_token)
    unk = tokenizer_json.get("model", {}).get("unk_id")
    return None if unk is None else int(unk)


def _pad_id(tokenizer_json: dict[str, Any], unk_id: int | None) -> int:
    """The id placed in padding positions (masked out by the graph): the tokenizer's own pad id if any."""
    padding = tokenizer_json.get("padding") or {}
    if isinstance(padding.get("pad_id"), int):
        return padding["pad_id"]
    return unk_id if unk_id is not None else 0
