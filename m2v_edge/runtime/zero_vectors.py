"""Texts that give zero vectors: none of their tokens is in the model's vocabulary (emoji, a script the model does
not cover, an empty text). model2vec returns the zero vector for them; m2v-edge counts them and says why.

One home for the count and the message, used by `EdgeEmbedder.encode`, `m2v-edge encode`, `ingest`, `serve` and the
searches, so that every surface words it the same way.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np

MULTILINGUAL_MODEL = "minishlab/potion-multilingual-128M"
"""The model2vec model to suggest for texts in a language the current model does not cover."""

_SCRIPT_LANGUAGES = {
    "HIRAGANA": "Japanese",
    "KATAKANA": "Japanese",
    "CJK": "Chinese or Japanese",
    "HANGUL": "Korean",
    "CYRILLIC": "Russian and other Cyrillic-script languages",
    "GREEK": "Greek",
    "ARABIC": "Arabic",
    "HEBREW": "Hebrew",
    "DEVANAGARI": "Hindi and other Devanagari-script languages",
    "THAI": "Thai",
    "BENGALI": "Bengali",
    "TAMIL": "Tamil",
    "GEORGIAN": "Georgian",
    "ARMENIAN": "Armenian",
    "ETHIOPIC": "Amharic and other Ethiopic-script languages",
}
"""The first word of a Unicode character name, for the scripts whose texts most often give zero vectors."""


def zero_rows(vectors: np.ndarray) -> np.ndarray:
    """Indices of the rows of a [n, dim] array that are exactly zero."""
    matrix = np.asarray(vectors)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    return np.flatnonzero(~matrix.any(axis=1))


def dominant_script(texts: Sequence[str]) -> str | None:
    """The language hint of the script most letters of `texts` are in, or None for Latin, symbols and emoji."""
    scripts: Counter[str] = Counter()
    for text in texts:
        for char in text[:200]:
            if char.isalpha() and not char.isascii():
                script = unicodedata.name(char, "").split(" ", 1)[0]
                if script in _SCRIPT_LANGUAGES:
                    scripts[script] += 1
    if not scripts:
        return None
    return _SCRIPT_LANGUAGES[scripts.most_common(1)[0][0]]


def zero_vector_message(count: int, total: int, model: str, texts: Sequence[str] = ()) -> str:
    """One sentence saying that `count` of `total` texts gave zero vectors, why, and what to do.

    :param model: the model's name as the user knows it (the bundle's source id).
    :param texts: some of the texts that gave zero vectors, to name their script in the hint.
    """
    which = "1 text" if count == 1 else f"{count} of {total} texts"
    if count == total and total > 1:
        which = f"all {total} texts"
    message = f"{which} gave zero vectors: {model} knows none of their tokens"
    language = dominant_script(texts)
    if language is not None:
        message += f"; {model} does not cover {language}: use a multilingual model such as {MULTILINGUAL_MODEL}"
    else:
        message += " (empty texts, emoji or symbols, or a script the model does not cover)"
    return message
