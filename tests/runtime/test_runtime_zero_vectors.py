"""The zero-vector count and message that every surface (encode, ingest, serve, search) shares."""

from __future__ import annotations

import numpy as np

from m2v_edge.runtime import EdgeEmbedder
from m2v_edge.runtime.zero_vectors import MULTILINGUAL_MODEL, dominant_script, zero_rows, zero_vector_message


def test_zero_rows_finds_exactly_the_all_zero_rows() -> None:
    vectors = np.array([[0.0, 0.0], [0.0, 1e-30], [1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    assert zero_rows(vectors).tolist() == [0, 3]
    assert zero_rows(np.zeros(4, dtype=np.float32)).tolist() == [0]
    assert zero_rows(np.ones(4, dtype=np.float32)).tolist() == []


def test_texts_the_real_model_has_no_token_for_are_the_zero_rows(potion_bundle) -> None:
    texts = ["a text editor", "😀😀", "", "ไทย ภาษา", "monitor network traffic"]
    vectors = EdgeEmbedder(potion_bundle, variant="fp32", profile="generic").encode(texts)
    assert zero_rows(vectors).tolist() == [1, 2, 3]


def test_the_hint_names_the_script_and_a_multilingual_model() -> None:
    message = zero_vector_message(2, 10, "potion-base-8M", ["ภาษาไทย", "ไทย"])
    assert message.startswith("2 of 10 texts gave zero vectors: potion-base-8M knows none of their tokens")
    assert "does not cover Thai" in message and MULTILINGUAL_MODEL in message


def test_without_a_script_the_hint_lists_the_usual_causes() -> None:
    assert zero_vector_message(1, 1, "m", ["😀"]) == (
        "1 text gave zero vectors: m knows none of their tokens "
        "(empty texts, emoji or symbols, or a script the model does not cover)"
    )
    assert zero_vector_message(3, 3, "m").startswith("all 3 texts gave zero vectors")


def test_dominant_script_counts_letters_not_symbols() -> None:
    assert dominant_script(["日本語のテキスト ひらがな"]) == "Japanese"
    assert dominant_script(["한국어 텍스트"]) == "Korean"
    assert dominant_script(["plain ascii", "😀 ★"]) is None
