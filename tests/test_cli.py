"""The `m2v-edge` command line: export and encode end to end, and one-line errors on bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.cli import main
from m2v_edge.runtime import EdgeEmbedder

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["a fast text editor", "", "library for parsing XML documents", "日本語のテキスト"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "m2v_edge.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_version_matches_package() -> None:
    import m2v_edge

    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"m2v-edge {m2v_edge.__version__}"


def test_export_command_writes_a_loadable_bundle(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = run_cli("export", str(REPO / "models/potion-base-8M"), "-o", str(out), "--variants", "int8")
    assert result.returncode == 0, result.stderr
    assert "model.int8.onnx" in result.stdout
    assert sorted(json.loads((out / "m2v_edge.json").read_text())["variants"]) == ["int8"]
    assert EdgeEmbedder(out, variant="int8").encode(["hello"]).shape == (1, 256)


def test_encode_jsonl_and_npy_agree_with_the_api(potion_bundle: Path, tmp_path: Path) -> None:
    source = tmp_path / "texts.jsonl"
    source.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in TEXTS), encoding="utf-8")
    expected = EdgeEmbedder(potion_bundle, variant="fp32").encode(TEXTS)

    npy = tmp_path / "vectors.npy"
    args = ["encode", str(potion_bundle), "--variant", "fp32", "--input", str(source)]
    assert main([*args, "--format", "npy", "--output", str(npy), "--batch", "3"]) == 0
    # Blocks of 3: a last block of one text is pooled in the native core, within float32 rounding of the graph.
    np.testing.assert_allclose(np.load(npy), expected, atol=1e-6)

    out = tmp_path / "vectors.jsonl"
    assert main([*args, "--format", "jsonl", "--output", str(out)]) == 0
    rows = np.array([json.loads(line)["vector"] for line in out.read_text().splitlines()], dtype=np.float32)
    np.testing.assert_allclose(rows, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["encode", "/nonexistent/bundle"], "does not exist"),
        (["export", "/nonexistent/model", "-o", "/tmp/never"], "neither an existing folder nor a Hub id"),
        (["export", "REPO_MODEL", "-o", "OUT", "--variants", "fp8"], "unknown variant"),
        (["encode", "BUNDLE", "--variant", "int4"], "has no variant 'int4'"),
        (["encode", "BUNDLE", "--format", "npy"], "needs --output"),
        (["encode", "BUNDLE", "--input", "BAD_JSONL"], "line 2"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    args: list[str], message: str, potion_bundle: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n', encoding="utf-8")
    swap = {"REPO_MODEL": str(REPO / "models/potion-base-8M"), "OUT": str(tmp_path / "o"), "BUNDLE": str(potion_bundle),
            "BAD_JSONL": str(bad)}
    result = run_cli(*[swap.get(a, a) for a in args])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [["--verbose", "encode", "/nonexistent/bundle"], ["encode", "/nonexistent/bundle", "-v"],
     ["-v", "profile", "show", "no-such-profile"], ["profile", "show", "no-such-profile", "--verbose"]],
)
def test_verbose_before_or_after_the_command_shows_the_traceback(argv: list[str]) -> None:
    result = run_cli(*argv)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "Error: " in result.stderr.strip().splitlines()[-1]


def test_encode_names_the_variant_it_uses(potion_bundle: Path) -> None:
    """int8 is most profiles' choice: the summary says so and how to get model2vec's exact vectors; --verbose says
    it before encoding."""
    base = ["encode", str(potion_bundle), "--profile", "raspberry-pi-4"]
    result = subprocess.run([sys.executable, "-m", "m2v_edge.cli", *base], input="hello\nworld\n",
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "encoded 2 texts with potion-base-8M int8 (the raspberry-pi-4 profile's choice; "
        "--variant fp32 gives model2vec's vectors exactly)\n"
    )
    verbose = subprocess.run([sys.executable, "-m", "m2v_edge.cli", *base, "-v", "--variant", "fp16"],
                             input="hello\n", capture_output=True, text=True, timeout=120, check=False)
    assert "m2v-edge: INFO: encoding with potion-base-8M fp16 (--variant fp32 gives" in verbose.stderr
    assert verbose.stderr.splitlines()[-1].startswith("encoded 1 text with potion-base-8M fp16 (")


def test_encode_counts_zero_vectors_over_the_whole_input_and_warns_once(potion_bundle: Path) -> None:
    texts = ["a fast text editor", "😀", "ภาษาไทย", "library for XML", "", "ไทย", "monitor network traffic"]
    result = subprocess.run(
        [sys.executable, "-m", "m2v_edge.cli", "encode", str(potion_bundle), "--variant", "fp32", "--batch", "2"],
        input="".join(f"{text}\n" for text in texts), capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 7
    assert result.stderr.splitlines() == [
        "encoded 7 texts with potion-base-8M fp32",
        "m2v-edge encode: warning: 4 of 7 texts gave zero vectors: potion-base-8M knows none of their tokens; "
        "potion-base-8M does not cover Thai: use a multilingual model such as minishlab/potion-multilingual-128M",
    ]


@pytest.mark.parametrize(("signal_number", "code", "said"), [(signal.SIGTERM, 143, "terminated"),
                                                            (signal.SIGINT, 130, "interrupted")])
def test_a_stopped_encode_leaves_no_output_behind(
    potion_bundle: Path, tmp_path: Path, signal_number: int, code: int, said: str
) -> None:
    """Stopped while its output is open under the temporary name, waiting for more input."""
    out = tmp_path / "vectors.npy"
    process = subprocess.Popen(
        [sys.executable, "-m", "m2v_edge.cli", "encode", str(potion_bundle), "--variant", "fp32", "--format", "npy",
         "--output", str(out), "--batch", "1"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdin is not None
        process.stdin.write("first text\n")
        process.stdin.flush()
        partial = tmp_path / ".vectors.npy.partial"
        deadline = time.monotonic() + 120
        while not partial.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the command never opened its output"
            time.sleep(0.01)
        process.send_signal(signal_number)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == code
    assert err == f"m2v-edge encode: {said}\n"
    assert list(tmp_path.iterdir()) == []


def test_a_missing_runtime_dependency_is_one_line_naming_it(
    potion_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As after `pip install --no-deps` or on a system onnxruntime has no wheels for: the fix, not a traceback."""
    texts = tmp_path / "texts.txt"
    texts.write_text("hello\n", encoding="utf-8")
    for name in [m for m in sys.modules if m.startswith(("onnxruntime", "m2v_edge.runtime", "m2v_edge.commands"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ModuleNotFoundError
    assert main(["encode", str(potion_bundle), "--input", str(texts)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "onnxruntime is not installed: pip install onnxruntime" in err[0], err
    assert "64-bit" in err[0]
