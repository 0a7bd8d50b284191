"""`m2v-edge encode` streams: output equals `EdgeEmbedder.encode`, any --batch, files appear only when complete.

Streamed blocks pad differently from one big call, so rows may differ by an ulp (see `test_runtime_batching`).
Peak memory at 10k and 1M texts is measured outside the suite (it stays flat: the input is read a block at a time
and the npy/jsonl output written a block at a time).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.cli import main
from m2v_edge.runtime import EdgeEmbedder

SAME = {"rtol": 0, "atol": 1e-6}


@pytest.fixture(scope="module")
def texts(debian_texts: list[str]) -> list[str]:
    """3,000 Debian texts, queries and long documents mixed, a few empty and odd ones among them."""
    mixed = [t for pair in zip(debian_texts[:1400], debian_texts[8000:9400]) for t in pair]
    return mixed + ["", " ", "😀 fox", "\x00", "中文"] * 40


@pytest.fixture(scope="module")
def expected(potion_bundle: Path, texts: list[str]) -> np.ndarray:
    return EdgeEmbedder(potion_bundle, variant="fp32").encode(texts)


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    return path


def encode(bundle: Path, source: Path, *extra: str) -> int:
    return main(["encode", str(bundle), "--variant", "fp32", "--input", str(source), "--no-progress", *extra])


@pytest.mark.parametrize("batch", ["1", "7", "1000", "4096"])
def test_streamed_npy_equals_one_encode_call(potion_bundle, texts, expected, tmp_path: Path, batch: str) -> None:
    source = write_jsonl(tmp_path / "texts.jsonl", texts)
    out = tmp_path / "vectors.npy"
    assert encode(potion_bundle, source, "--format", "npy", "--output", str(out), "--batch", batch) == 0
    vectors = np.load(out)
    assert vectors.dtype == np.float32 and vectors.shape == (len(texts), 256)
    np.testing.assert_allclose(vectors, expected, **SAME)
    assert not list(tmp_path.glob(".*.partial"))


def test_streamed_jsonl_and_plain_text_input(potion_bundle, texts, expected, tmp_path: Path, capsys) -> None:
    single_line = [t for t in texts if "\n" not in t and "\r" not in t][:2000]
    source = tmp_path / "texts.txt"
    source.write_text("".join(t + "\n" for t in single_line), encoding="utf-8")
    out = tmp_path / "vectors.jsonl"
    assert encode(potion_bundle, source, "--output", str(out), "--batch", "33") == 0
    rows = np.array([json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()], dtype=np.float64)
    reference = EdgeEmbedder(potion_bundle, variant="fp32").encode(single_line)
    np.testing.assert_allclose(rows, reference, rtol=0, atol=1e-6)
    assert capsys.readouterr().err.strip() == f"encoded {len(single_line)} texts with potion-base-8M fp32"


def test_a_failed_run_leaves_no_output_and_keeps_the_old_one(potion_bundle, texts, tmp_path: Path) -> None:
    source = tmp_path / "texts.jsonl"
    write_jsonl(source, texts[:2500])
    with open(source, "a", encoding="utf-8") as handle:
        handle.write('{"text": 42}\n')
    out = tmp_path / "vectors.npy"
    out.write_bytes(b"previous results")
    for fmt in ("npy", "jsonl"):
        assert encode(potion_bundle, source, "--format", fmt, "--output", str(out), "--batch", "100") == 2
        assert out.read_bytes() == b"previous results"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["texts.jsonl", "vectors.npy"]


def test_progress_bar_on_request(potion_bundle, texts, tmp_path: Path, capsys) -> None:
    source = write_jsonl(tmp_path / "texts.jsonl", texts[:500])
    out = tmp_path / "v.npy"
    args = ["encode", str(potion_bundle), "--variant", "fp32", "--input", str(source), "--format", "npy",
            "--output", str(out), "--batch", "100"]
    assert main([*args, "--progress"]) == 0
    err = capsys.readouterr().err
    summary = "encoded 500 texts with potion-base-8M fp32"
    assert "encode (fp32)" in err and "500" in err and err.strip().endswith(summary)
    assert main([*args, "--no-progress"]) == 0
    assert capsys.readouterr().err == f"{summary}\n"
