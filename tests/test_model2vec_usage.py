"""model2vec's documented usage (the README's and the inference docs' snippets), run once with model2vec and once
with `EdgeEmbedder`, changing only the import and the loading line: every result must be model2vec's.

The snippet is written here in the same shape as model2vec's docs (one list, one string, a `max_length`, a progress
bar), with texts of our own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

WITH_MODEL2VEC = """
from model2vec import StaticModel
model = StaticModel.from_pretrained(SOURCE)
"""
WITH_M2V_EDGE = """
from m2v_edge import EdgeEmbedder
model = EdgeEmbedder(BUNDLE, variant="fp32")
"""
USAGE = """
# Make embeddings
embeddings = model.encode(["Pack a raincoat for the trip.", "The museum closes on Mondays."])

# One sentence gives one vector
vector = model.encode("Where does the night train stop?")

# Cap the tokens per sentence, with a progress bar
capped = model.encode(["a very long sentence that keeps going " * 40, "short"], max_length=16, show_progress_bar=True)
"""
RESULTS = ("embeddings", "vector", "capped")


def run(preamble: str, **names: object) -> dict[str, object]:
    namespace: dict[str, object] = dict(names)
    exec(preamble + USAGE, namespace)  # noqa: S102 - the documented usage, run as a user would run it
    return namespace


@pytest.fixture(scope="module")
def results(potion_source: Path, potion_bundle: Path) -> tuple[dict[str, object], dict[str, object]]:
    reference = run(WITH_MODEL2VEC, SOURCE=str(potion_source))
    ours = run(WITH_M2V_EDGE, BUNDLE=str(potion_bundle))
    return reference, ours


@pytest.mark.parametrize("name", RESULTS)
def test_the_documented_usage_gives_model2vecs_results(results, name: str) -> None:
    reference, ours = (np.asarray(side[name]) for side in results)
    assert ours.shape == reference.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)


def test_the_progress_bar_shows(potion_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(WITH_M2V_EDGE, BUNDLE=str(potion_bundle))
    assert "2/2" in capsys.readouterr().err
