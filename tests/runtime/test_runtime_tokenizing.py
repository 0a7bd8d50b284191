"""Which tokenizing path a bundle takes, and why: the export's decision, the core's version, the switch, the
device profile's limit on the tokenizers fallback. Every path gives the same ids (the parity tests); here the
choice itself and its messages are checked."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from m2v_edge.bundle import read_manifest
from m2v_edge.errors import BundleError
from m2v_edge.export import export_model
from m2v_edge.runtime import EdgeEmbedder, native, tokenizing


@pytest.fixture(autouse=True)
def _log_every_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each reason is logged once per process: forget what other tests' loads logged."""
    monkeypatch.setattr(tokenizing, "_logged", set())


def edit_manifest(bundle: Path, change) -> None:
    path = bundle / "m2v_edge.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_auto_takes_the_native_core_where_the_export_checked_it(potion_bundle: Path) -> None:
    decision = read_manifest(potion_bundle).core_tokenizer
    assert decision.file is not None and decision.reason == "" and decision.probe_texts > 2000
    assert decision.core_version == native.core_version()
    assert EdgeEmbedder(potion_bundle, variant="fp32").tokenizing == "native"


def test_a_tokenizer_the_core_does_not_reproduce_is_recorded_with_the_reason(tiny_models, caplog) -> None:
    bundle = tiny_models.bundle("bpeunk-f32-w-L3")  # BPE
    decision = read_manifest(bundle).core_tokenizer
    assert decision.file is None and "does not reproduce the BPE model" in decision.reason
    assert not (bundle / "tokenizer.m2v").exists()
    with caplog.at_level(logging.INFO, logger="m2v_edge.runtime.tokenizing"):
        assert EdgeEmbedder(bundle, variant="fp32").tokenizing == "tokenizers"
    assert "does not reproduce the BPE model" in caplog.text
    with pytest.raises(BundleError, match="cannot use the native core: the native core does not reproduce"):
        EdgeEmbedder(bundle, variant="fp32", tokenizing="native")


def test_another_core_version_falls_back_until_the_bundle_is_exported_again(potion_bundle, tmp_path, caplog) -> None:
    bundle = Path(shutil.copytree(potion_bundle, tmp_path / "bundle"))
    edit_manifest(bundle, lambda data: data["core_tokenizer"].update(core_version=999))
    with caplog.at_level(logging.INFO, logger="m2v_edge.runtime.tokenizing"):
        assert EdgeEmbedder(bundle, variant="fp32").tokenizing == "python"
    assert "checked with native core version 999" in caplog.text and "export the bundle again" in caplog.text
    with pytest.raises(BundleError, match="version 999"):
        EdgeEmbedder(bundle, variant="fp32", tokenizing="native")


def test_a_bundle_from_before_the_core_says_so(potion_bundle, tmp_path, caplog) -> None:
    bundle = Path(shutil.copytree(potion_bundle, tmp_path / "bundle"))
    edit_manifest(bundle, lambda data: data.pop("core_tokenizer"))
    with caplog.at_level(logging.INFO, logger="m2v_edge.runtime.tokenizing"):
        assert EdgeEmbedder(bundle, variant="fp32").tokenizing == "python"
    assert "exported before the native core existed" in caplog.text


def test_the_switch_turns_the_core_off_for_export_and_runtime(tiny_models, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(native.SWITCH, "0")
    bundle = export_model(tiny_models.folder("wp-f32-L1"), tmp_path / "bundle", variants=("fp32",))
    decision = read_manifest(bundle).core_tokenizer
    assert decision.file is None and "turned off (M2V_EDGE_NATIVE=0)" in decision.reason
    assert EdgeEmbedder(bundle, variant="fp32").tokenizing == "python"
    monkeypatch.setenv(native.SWITCH, "1")
    with pytest.raises(BundleError, match="turned off"):  # the decision travels with the bundle
        EdgeEmbedder(bundle, variant="fp32", tokenizing="native")


def test_a_vocabulary_too_big_for_the_device_without_the_core_is_refused(tokenlearn_bundle, monkeypatch) -> None:
    """tokenlearn's 276k-piece tokenizer.json would take ~300 MiB in tokenizers: more than the Zero 2 W profile
    allows without the native core. Asking for tokenizers by name still loads it."""
    monkeypatch.setenv(native.SWITCH, "0")
    with pytest.raises(BundleError) as info:
        EdgeEmbedder(tokenlearn_bundle, variant="int8", profile="raspberry-pi-zero-2w")
    message = str(info.value)
    assert "fallback_tokenizer_mib = 96" in message and "install m2v-edge with its native core" in message
    assert "tokenizing='tokenizers'" in message
    embedder = EdgeEmbedder(tokenlearn_bundle, variant="int8", profile="raspberry-pi-zero-2w", tokenizing="tokenizers")
    assert embedder.encode(["une phrase en français"]).shape == (1, 64)


def test_a_small_vocabulary_falls_back_on_any_profile(potion_bundle, monkeypatch) -> None:
    monkeypatch.setenv(native.SWITCH, "0")
    embedder = EdgeEmbedder(potion_bundle, variant="int8", profile="raspberry-pi-zero-2w")
    assert embedder.tokenizing == "tokenizers"  # the profile turns the Python fast path off too
