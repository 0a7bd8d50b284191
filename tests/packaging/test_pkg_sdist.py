"""m2v-edge from its sdist, in fresh venvs installed offline: where nothing has a wheel for (another machine,
another Python), pip builds the sdist. With a working C compiler that compiles the native core; where compiling
fails (here: `CC=false`), m2v-edge still installs, without the core, and bundles tokenize through tokenizers, with
the same vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from clean_venvs import CleanVenv
from pkg_support import MODEL_DISTRIBUTION, MODEL_NAME, REPORT, Dist


def sdist_venv(root: Path, label: str, wheelhouse: Path, dist: Dist, env: dict[str, str]) -> CleanVenv:
    """A fresh venv with m2v-edge built from the sdist (setuptools from the wheelhouse) and the model package."""
    venv = CleanVenv(root / "venv", label, REPORT.transcript)
    venv.install(wheelhouse, str(dist.sdist), MODEL_DISTRIBUTION, env=env)
    return venv


@pytest.fixture(scope="module")
def compiled_venv(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path, dist: Dist) -> CleanVenv:
    return sdist_venv(tmp_path_factory.mktemp("sdist-cc"), "sdist, compiler", wheelhouse, dist, {})


@pytest.fixture(scope="module")
def fallback_venv(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path, dist: Dist) -> CleanVenv:
    return sdist_venv(tmp_path_factory.mktemp("sdist-nocc"), "sdist, CC=false", wheelhouse, dist, {"CC": "false"})


def cores(venv: CleanVenv) -> list[str]:
    return sorted(path.name for path in (venv.site_packages() / "m2v_edge").glob("_core*"))


def test_sdist_with_a_compiler_builds_the_core(
    compiled_venv: CleanVenv, dist: Dist, potion_vectors: tuple[list[str], np.ndarray]
) -> None:
    texts, expected = potion_vectors
    assert len(cores(compiled_venv)) == 1
    assert compiled_venv.tokenizing(MODEL_NAME) == ("True", dist.shipped_path, "-")
    np.testing.assert_allclose(compiled_venv.encode(MODEL_NAME, texts), expected, atol=1e-6)


def test_sdist_where_compiling_fails_installs_without_the_core(
    fallback_venv: CleanVenv, potion_vectors: tuple[list[str], np.ndarray]
) -> None:
    texts, expected = potion_vectors
    assert cores(fallback_venv) == []
    available, path, reason = fallback_venv.tokenizing(MODEL_NAME)
    assert (available, path) == ("False", "python")  # the generic profile keeps the ASCII fast path
    assert "installed without its native core" in reason and "with a C compiler" in reason, reason
    np.testing.assert_allclose(fallback_venv.encode(MODEL_NAME, texts), expected, atol=1e-6)
    np.testing.assert_allclose(fallback_venv.encode(MODEL_NAME, texts, compat=True), expected, atol=1e-6)
