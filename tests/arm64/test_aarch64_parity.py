"""m2v-edge on aarch64 (a Raspberry Pi 4 under qemu user-mode emulation) against m2v-edge on x86-64.

The bundle was exported on the x86-64 host (as on a workstation) and its vectors for 500 Debian texts computed there;
here the same bundle bytes are loaded by the aarch64 builds of onnxruntime, tokenizers and numpy, as on a board.
m2v-edge itself comes from its aarch64 wheel, with the native core: run_tests.sh runs this file with the core and
again with it turned off (M2V_EDGE_NATIVE=0), and each test checks which tokenizing path it took.
Bound (issues 6 and 16): max abs difference <= 1e-6 for every variant.
"""

from __future__ import annotations

import importlib
import platform
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import tokenizers
from arm64_reference import POTION_SOURCE, VARIANTS, bundle_digests, timed_encode

import m2v_edge
from m2v_edge.runtime import EdgeEmbedder, native

MAX_ABS_DIFF = 1e-6
EM_AARCH64 = 183
"""ELF e_machine of AArch64."""


def elf_machine(path: Path) -> int:
    header = Path(path).read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(header[18:20], "little")


def native_module(package) -> Path:
    """The compiled extension of a package (its first .so file)."""
    return next(Path(package.__file__).parent.rglob("*.so"))


def test_interpreter_and_native_libraries_are_aarch64() -> None:
    assert platform.machine() == "aarch64"
    assert elf_machine(Path(sys.executable)) == EM_AARCH64
    for package in (onnxruntime, tokenizers, np):
        library = native_module(package)
        assert elf_machine(library) == EM_AARCH64, library


def test_m2v_edge_is_the_installed_wheel_with_its_aarch64_core(installed_site: Path, native_expected: bool) -> None:
    """Not the work tree's m2v_edge (whose core is this host's x86-64 build): the wheel's, core included."""
    assert Path(m2v_edge.__file__).is_relative_to(installed_site), m2v_edge.__file__
    core = Path(importlib.import_module("m2v_edge._core").__file__)  # imports even when turned off
    assert core.parent == installed_site / "m2v_edge" and core.name == "_core.cpython-311-aarch64-linux-gnu.so"
    assert elf_machine(core) == EM_AARCH64
    assert native.available() is native_expected, native.unavailable_reason()
    if not native_expected:
        assert "turned off" in native.unavailable_reason()


def expected_path(native_expected: bool, embedder: EdgeEmbedder) -> None:
    """The embedder took the native core when it is on, and one of the tokenizers paths when it is off."""
    if native_expected:
        assert embedder.tokenizing == "native"
    else:
        assert embedder.tokenizing in ("python", "tokenizers")


@pytest.mark.parametrize("variant", VARIANTS)
def test_vectors_equal_x86_64(x86_reference, figure_log, native_expected: bool, variant: str) -> None:
    texts = x86_reference.texts
    expected = x86_reference.vectors[variant]
    embedder = EdgeEmbedder(x86_reference.bundle, variant=variant)
    expected_path(native_expected, embedder)
    out, seconds = timed_encode(embedder, texts)
    assert out.dtype == np.float32 and out.shape == expected.shape
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(~out.any(axis=1), ~expected.any(axis=1))  # the same rows are zero (if any)
    max_abs = float(np.abs(out.astype(np.float64) - expected.astype(np.float64)).max())
    x86 = x86_reference.description["variants"][variant]
    figure_log.record(
        f"{variant}: {len(texts)} Debian texts, max abs diff aarch64 ({embedder.tokenizing}) vs x86-64 "
        f"({x86['tokenizing']}) = {max_abs:.3e} (bound {MAX_ABS_DIFF:g}); "
        f"emulated {len(texts) / seconds:,.0f} texts/s (profile {embedder.profile.name}, "
        f"{embedder.session.get_session_options().intra_op_num_threads} threads) vs x86-64 "
        f"{x86['texts_per_s']:,.0f} texts/s (profile {x86['profile']})"
    )
    assert max_abs <= MAX_ABS_DIFF, f"{variant}: max abs difference {max_abs:.3e} > {MAX_ABS_DIFF:g}"


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_one_text_at_a_time_equals_x86_64(x86_reference, native_expected: bool, variant: str) -> None:
    """The single-text path (no batching, no padding) on aarch64 against the batched x86-64 vectors."""
    embedder = EdgeEmbedder(x86_reference.bundle, variant=variant)
    expected_path(native_expected, embedder)
    half = len(x86_reference.texts) // 2
    rows = [*range(20), *range(half, half + 20)]  # 20 synopses, 20 long descriptions
    for row in rows:
        out = embedder.encode(x86_reference.texts[row])
        assert out.shape == (256,)  # one string in, one vector out (0.3.0)
        max_abs = float(np.abs(out.astype(np.float64) - x86_reference.vectors[variant][row]).max())
        assert max_abs <= MAX_ABS_DIFF, (variant, row, max_abs)


def test_auto_profile_on_a_raspberry_pi_4(x86_reference, monkeypatch) -> None:
    """The emulated root's /proc/cpuinfo is a Raspberry Pi 4's (Cortex-A72, `Model` line), as the runtime reads it."""
    monkeypatch.delenv("M2V_EDGE_PROFILE", raising=False)
    embedder = EdgeEmbedder(x86_reference.bundle)
    assert embedder.profile.name == "raspberry-pi-4"
    assert embedder.variant == "int8"  # the profile's first choice
    assert 1 <= embedder.session.get_session_options().intra_op_num_threads <= 4


def test_export_on_aarch64_is_byte_identical(x86_reference, figure_log, tmp_path: Path) -> None:
    """Exporting on the board gives the same bytes as exporting on the workstation, the native core's compiled
    tokenizer.m2v included (both sides have the core; run_tests.sh leaves this test out when it is turned off)."""
    from m2v_edge.export import export_model

    x86_files = x86_reference.description["bundle_files"]
    assert "tokenizer.m2v" in x86_files, "the x86-64 export did not write tokenizer.m2v: no core on the host?"
    bundle = export_model(POTION_SOURCE, tmp_path / "bundle", variants=VARIANTS)
    assert bundle_digests(bundle) == x86_files
    figure_log.record(
        f"export on aarch64: all {len(x86_files)} bundle files byte-identical to the x86-64 export (tokenizer.m2v "
        "included)"
    )
