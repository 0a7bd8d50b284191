"""`PathChoice`: large ASCII chunks go down whichever of the fast path and tokenizers was measured faster.

The choice may only change speed: every test also checks the ids (or vectors) against tokenizers' own. Which path
really wins depends on the machine, so the integration tests make one path slower on purpose and check that the race
notices, in both directions.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

import m2v_edge.runtime.tokens as tokens_module
from m2v_edge import EdgeEmbedder
from m2v_edge.runtime.path_choice import RACE_CHARS, RACE_ROUNDS, PathChoice
from m2v_edge.runtime.tokens import BundleTokenizer, TokenBatch

LARGE = RACE_CHARS


def test_the_schedule_warms_up_then_alternates_then_keeps_the_winner(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="m2v_edge.runtime.path_choice")
    choice = PathChoice(race=True)
    assert choice.choose(LARGE - 1) == ("fast", False)  # small chunks are never timed
    assert choice.choose(LARGE) == ("fast", False)  # warm-up
    seen = []
    for _ in range(2 * RACE_ROUNDS):
        path, timed = choice.choose(LARGE)
        assert timed and choice.winner is None
        seen.append(path)
        choice.record(path, LARGE, 0.010 if path == "tokenizers" else 0.030)
    assert seen == ["tokenizers", "fast"] * RACE_ROUNDS
    assert choice.winner == "tokenizers"
    assert "with tokenizers (fast path 1.09 M characters/s, tokenizers 3.28 M characters/s)" in caplog.text
    assert choice.rates() == pytest.approx({"tokenizers": LARGE / 0.010, "fast": LARGE / 0.030})
    assert choice.choose(10 * LARGE) == ("tokenizers", False)
    assert choice.choose(LARGE - 1) == ("fast", False)


def test_without_a_race_the_fast_path_always_wins() -> None:
    choice = PathChoice(race=False)
    assert choice.winner == "fast"
    assert {choice.choose(LARGE * n) for n in range(1, 6)} == {("fast", False)}


@pytest.mark.parametrize(("cpus", "races"), [(1, False), (2, False), (3, True), (64, True)])
def test_the_race_needs_enough_cpus(cpus: int, races: bool, potion_bundle: Path, monkeypatch) -> None:
    monkeypatch.setattr(tokens_module, "usable_cpus", lambda: cpus)
    bundle = BundleTokenizer(potion_bundle / "tokenizer.json", 512)
    assert (bundle.path_choice.winner is None) == races


@pytest.mark.parametrize("slowed", ["fast", "tokenizers"])
def test_the_race_picks_the_path_that_is_faster_here(
    slowed: str, potion_bundle: Path, debian_texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens_module, "usable_cpus", lambda: 8)
    bundle = BundleTokenizer(potion_bundle / "tokenizer.json", 512)
    assert bundle.fast_path is not None and bundle.path_choice.winner is None
    if slowed == "fast":
        fast_tokenize = bundle.fast_path.tokenize
        monkeypatch.setattr(bundle.fast_path, "tokenize", lambda *args: time.sleep(0.5) or fast_tokenize(*args))
    else:
        encode = bundle._encode
        monkeypatch.setattr(bundle, "_encode", lambda texts: time.sleep(0.5) or encode(texts))
    reference = Tokenizer.from_file(str(potion_bundle / "tokenizer.json"))
    reference.enable_truncation(512)
    documents = [text[:1536] for text in debian_texts[8000:] if text.isascii()]
    chunks = [documents[start : start + 200] for start in range(0, 200 * (2 * RACE_ROUNDS + 2), 200)]
    assert all(sum(map(len, chunk)) >= LARGE for chunk in chunks)
    for chunk in chunks:
        expected = [e.ids for e in reference.encode_batch_fast(chunk, add_special_tokens=False)]
        assert _ids(bundle.tokenize(chunk)) == expected
    assert bundle.path_choice.winner == ("tokenizers" if slowed == "fast" else "fast")


def test_vectors_do_not_depend_on_the_race(potion_bundle: Path, debian_texts: list[str], monkeypatch) -> None:
    plain = EdgeEmbedder(potion_bundle, variant="int8", tokenizing="python")
    monkeypatch.setattr(tokens_module, "usable_cpus", lambda: 8)
    racing = EdgeEmbedder(potion_bundle, variant="int8", tokenizing="python")
    assert racing._tokenizer.path_choice.winner is None
    expected = plain.encode(debian_texts)
    for _ in range(2):  # during the race, then with the winner
        assert np.array_equal(racing.encode(debian_texts), expected)
    assert racing._tokenizer.path_choice.winner is not None


def test_threads_racing_at_once_get_the_same_vectors(potion_bundle: Path, debian_texts: list[str], monkeypatch) -> None:
    batches = [debian_texts[i::40][:400] for i in range(8)]  # 200 queries and 200 documents: 78k-94k characters each
    expected = [EdgeEmbedder(potion_bundle, variant="fp32", tokenizing="python").encode(batch) for batch in batches]
    monkeypatch.setattr(tokens_module, "usable_cpus", lambda: 8)
    racing = EdgeEmbedder(potion_bundle, variant="fp32", tokenizing="python")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(racing.encode, batches * 3))
    assert racing._tokenizer.path_choice.winner is not None  # the race ran, and ended, among the threads
    for index, result in enumerate(results):
        np.testing.assert_array_equal(result, expected[index % 8])


def _ids(tokens: TokenBatch) -> list[list[int]]:
    return [tokens.ids[o : o + n].tolist() for o, n in zip(tokens.offsets, tokens.lengths)]
