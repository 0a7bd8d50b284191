"""Export where the machine, not the model, is the problem: large tables, unusable or busy output locations, an
unreachable Hub, and the Hub download patterns.

Large tables: the pooling graph refers to its arrays as ONNX external data and onnx's checker sees the graph without
them, so no table is ever serialised into a protobuf (which refuses more than 2 GiB); the table is streamed a block
of rows at a time into the data files. Checked here on a moderate table through the code path (what the checker is
given, what goes through `numpy_helper.from_array`) and through the peak memory of an export in a fresh process.
Measured by hand on a 500,353 x 256 float32 table with a 500k-piece Unigram tokenizer (`bench/multilingual_model`),
fp32, int8 and int4 (and the native core's tokenizer file): 1.39 GB peak RSS, most of it the tokenizer (3.82 GB
before the streaming).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import hub_http
from helpers.tiny_models import TinyModels
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, pre_tokenizers

from m2v_edge.errors import ExportError, SourceModelError
from m2v_edge.export import export_model
from m2v_edge.runtime import EdgeEmbedder

BASE = "wp-f32-L1"


def write_wordlevel_model(folder: Path, rows: int, dim: int, seed: int = 0) -> np.ndarray:
    """A Model2Vec folder (layout 1) with a WordLevel vocabulary `[UNK]`, `w1` ... and a float32 table; returns it."""
    folder.mkdir(parents=True)
    vocab = {"[UNK]": 0, **{f"w{i}": i for i in range(1, rows)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    table = np.random.default_rng(seed).standard_normal((rows, dim), dtype=np.float32)
    save_file({"embeddings": table}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"normalize": True}))
    return table


# --- large tables -------------------------------------------------------------------------------------------------


def test_the_table_is_never_serialised_into_a_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx
    from onnx import numpy_helper

    import m2v_edge.export.graph_builder as graph_builder

    table = write_wordlevel_model(tmp_path / "src", rows=20_000, dim=256)  # 20 MB
    checked: list[int] = []
    real_check, real_from_array = onnx.checker.check_model, numpy_helper.from_array
    converted: list[int] = []

    def check(model, *args, **kwargs):
        checked.append(model.ByteSize())
        return real_check(model, *args, **kwargs)

    def from_array(array, *args, **kwargs):
        converted.append(np.asarray(array).nbytes)
        return real_from_array(array, *args, **kwargs)

    monkeypatch.setattr(onnx.checker, "check_model", check)
    monkeypatch.setattr(graph_builder.numpy_helper, "from_array", from_array)
    variants = ("fp32", "fp16", "int8", "int4")
    bundle = export_model(tmp_path / "src", tmp_path / "out", variants=variants)
    assert len(checked) == len(variants) and max(checked) < 200_000, checked  # the table alone is 20 MB
    assert max(converted) < 1_000_000, converted  # small constants and per-row scales; the int4 table is 2.5 MB
    for variant in variants:
        assert (bundle / f"model.{variant}.onnx").stat().st_size < 200_000
    assert (bundle / "model.fp32.data").read_bytes() == table.astype("<f4").tobytes()
    texts = ["w1 w2 w19999", "w7", "nothing known"]
    got = EdgeEmbedder(bundle, variant="fp32", profile="generic").encode(texts)
    rows = [table[[1, 2, 19999]].astype(np.float64).sum(axis=0), table[7].astype(np.float64)]
    expected = np.stack([row / np.linalg.norm(row) for row in rows] + [np.zeros(256)])
    assert np.abs(got - expected).max() < 1e-6


MEASURE_SCRIPT = r"""
import json, sys
from m2v_edge.export import export_model

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) starts again from the current RSS: imports do not count
before = status("VmRSS")
export_model(sys.argv[1], sys.argv[2], variants=("fp32", "int8", "int4"))
print(json.dumps({"added_kib": status("VmHWM") - before}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads and resets the peak RSS in /proc/self")
def test_peak_memory_of_a_large_export(tmp_path: Path) -> None:
    """Exporting a 128 MiB float32 table to fp32, int8 and int4 adds less than 0.75x the table to the peak RSS
    (0.52x to 0.56x measured): the table is streamed a block of rows at a time, so what is added is the blocks in
    flight and the tokenizer, whatever the table's size. Loading the table whole, as before, added 1.9x (and
    serialising it into the graph, before that, 6.8x)."""
    table = write_wordlevel_model(tmp_path / "src", rows=32_768, dim=1024)
    done = subprocess.run(
        [sys.executable, "-c", MEASURE_SCRIPT, str(tmp_path / "src"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    added = json.loads(done.stdout.strip().splitlines()[-1])["added_kib"] * 1024
    assert added <= 0.75 * table.nbytes, f"{added / 2**20:.0f} MiB for a {table.nbytes / 2**20:.0f} MiB table"
    assert (tmp_path / "out" / "model.fp32.data").stat().st_size == table.nbytes


# --- the output location --------------------------------------------------------------------------------------------


def test_parent_that_is_a_file(tiny_models: TinyModels, tmp_path: Path) -> None:
    blocker = tmp_path / "exports"
    blocker.write_text("a file where a folder should be")
    out = blocker / "nested" / "bundle"
    with pytest.raises(ExportError) as info:
        export_model(tiny_models.folder(BASE), out, variants=("fp32",))
    message = str(info.value)
    assert str(out) in message and f"{blocker} is a file" in message and ".partial" not in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports"]


def test_unwritable_parent_is_named_not_the_staging_folder(
    tiny_models: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only parent: creating the staging folder is refused as the kernel refuses it (EACCES, naming the
    temporary path), injected so that it happens for root too (tests run as root in CI)."""
    import tempfile

    def refused(prefix: str, suffix: str, dir: Path) -> str:
        raise PermissionError(13, "Permission denied", str(Path(dir) / f"{prefix}abcdefgh{suffix}"))

    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    out = tmp_path / "bundle"
    with pytest.raises(ExportError) as info:
        export_model(tiny_models.folder(BASE), out, variants=("fp32",))
    message = str(info.value)
    assert str(out) in message and f"{tmp_path} is not writable" in message and ".partial" not in message, message


def test_leftovers_of_killed_exports_are_removed_but_not_those_of_running_ones(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            f".bundle.{dead}.abcd1234.partial": False,  # False: removed by the next export to `bundle`
            f".bundle.{dead}.efgh_567.old": False,
            f".bundle.{running.pid}.abcd1234.partial": True,  # an export running at the same time
            f".bundle.{os.getpid()}.abcd1234.partial": True,
            f".other.{dead}.abcd1234.partial": True,  # another out_dir's
            f".bundle.{dead}.abcd1234.partial.keep": True,  # not a name export makes
            ".bundle.notes": True,
        }
        for name in names:
            (tmp_path / name).mkdir()
            (tmp_path / name / "model.fp32.data").write_bytes(b"\0" * 64)
        export_model(tiny_models.folder(BASE), tmp_path / "bundle", variants=("fp32",))
        left = {p.name for p in tmp_path.iterdir()}
        assert left == {"bundle", *(name for name, kept in names.items() if kept)}
    finally:
        running.kill()
        running.wait()


# --- the Hub: unreachable, download patterns --------------------------------------------------------------------------


@pytest.fixture
def fake_hub(tiny_models: TinyModels, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """`snapshot_download` replaced: it fails as a machine without network does (a connection error) unless asked
    for the cache only, where it finds the tiny model; every call's arguments are recorded."""
    import huggingface_hub
    from huggingface_hub import constants as hub_constants

    calls: list[dict] = []

    def snapshot_download(repo_id, **kwargs):
        calls.append(kwargs)
        if not kwargs.get("local_files_only"):
            raise hub_http.connection_error("connect")
        return str(tiny_models.folder(BASE))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    # online mode, whatever HF_HUB_OFFLINE the machine running the tests has (huggingface_hub read it on import)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    return calls


def test_connection_failure_falls_back_to_the_cache(fake_hub: list[dict], tmp_path: Path) -> None:
    bundle = export_model("org/model", tmp_path / "out", variants=("fp32",), revision="c" * 40)
    assert [call["local_files_only"] for call in fake_hub] == [False, True]
    assert json.loads((bundle / "m2v_edge.json").read_text())["source"]["id"] == "org/model"


def test_offline_mode_goes_straight_to_the_cache(fake_hub: list[dict], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    export_model("org/model", tmp_path / "out", variants=("fp32",), revision="c" * 40)
    assert [call["local_files_only"] for call in fake_hub] == [True]


@pytest.mark.parametrize("error", ["read-timeout", "connect"])
def test_connection_failure_without_a_cached_snapshot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error) -> None:
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def snapshot_download(repo_id, **kwargs):
        if kwargs.get("local_files_only"):
            raise LocalEntryNotFoundError("not cached")
        raise hub_http.connection_error(error)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    with pytest.raises(SourceModelError) as info:
        export_model("org/model", tmp_path / "out", revision="c" * 40)
    assert "org/model" in str(info.value) and "c" * 40 in str(info.value) and "cache" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_subfolder_download_asks_for_the_repository_licence(fake_hub: list[dict], tmp_path: Path) -> None:
    from huggingface_hub.utils import filter_repo_objects

    with pytest.raises(SourceModelError):  # the fake snapshot has no such subfolder; only the patterns matter here
        export_model("org/model", tmp_path / "out", subfolder="models/small")
    patterns = fake_hub[-1]["allow_patterns"]
    files = ["LICENSE", "licence.md", "models/small/License.txt", "models/small/config.json", "other/LICENSE"]
    assert sorted(filter_repo_objects(files, allow_patterns=patterns)) == [
        "LICENSE",
        "licence.md",
        "models/small/License.txt",
        "models/small/config.json",
    ]


def test_a_subfolder_licence_wins_over_the_root_one(tiny_models: TinyModels, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    model = Path(shutil.copytree(tiny_models.folder(BASE), root / "models" / "small"))
    for licence in model.glob("LICEN*"):
        licence.unlink()
    (root / "LICENSE").write_text("root licence\n")
    (model / "Licence.txt").write_text("the model's own licence\n")
    bundle = export_model(root, tmp_path / "out", variants=("fp32",), subfolder="models/small")
    licences = sorted(p.name for p in bundle.iterdir() if p.name.lower().startswith("licen"))
    assert licences == ["Licence.txt"]

