"""Runtime tests keep the bundle verification cache ($XDG_CACHE_HOME/m2v-edge/verified) out of the home folder.

`bundle` and `readers` serve the hostile-bundle tests (`test_runtime_hostile_*`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_verification_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
        yield


@pytest.fixture
def bundle(tiny_models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the tiny bundle `helpers.hostile.SPEC` (fp32, fp16, int8) with a fresh verification cache."""
    from helpers.hostile import SPEC

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))
    return Path(shutil.copytree(tiny_models.bundle(SPEC), tmp_path / "bundle"))


@pytest.fixture
def readers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which of onnxruntime and tokenizers the embedder handed a file to, in order."""
    import m2v_edge.runtime.embedder as embedder_module
    import m2v_edge.runtime.tokens as tokens_module

    calls: list[str] = []
    build_session, tokenizer_class = embedder_module.build_session, tokens_module.Tokenizer

    def session(*args, **kwargs):
        calls.append("onnxruntime")
        return build_session(*args, **kwargs)

    class Tokenizer:
        @staticmethod
        def from_file(path: str):
            calls.append("tokenizers")
            return tokenizer_class.from_file(path)

    monkeypatch.setattr(embedder_module, "build_session", session)
    monkeypatch.setattr(tokens_module, "Tokenizer", Tokenizer)
    return calls
