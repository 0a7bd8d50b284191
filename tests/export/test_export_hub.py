"""Hub ids, offline: `export_model("org/name")` from a pre-filled huggingface_hub cache, with HF_HUB_OFFLINE=1.

huggingface_hub reads HF_HUB_OFFLINE and HF_HUB_CACHE when it is imported, so each scenario runs in a fresh
interpreter with the environment a user would set. The cache is laid out as huggingface_hub lays it out:
`models--org--name/{blobs,snapshots/<commit>,refs/main}`, snapshot files being symlinks to blobs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers.tiny_models import TinyModels, populate_hub_cache

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"

SCRIPT = r"""
import json, sys
from m2v_edge.export import export_model
from m2v_edge.errors import M2VEdgeError

results = []
for job in json.loads(sys.argv[1]):
    try:
        out = export_model(job["source"], job["out"], variants=["fp32"], revision=job.get("revision"))
        manifest = json.loads((out / "m2v_edge.json").read_text())
        licences = [e["file"] for e in manifest["licence_files"]]
        results.append({"ok": True, "source": manifest["source"], "licences": licences})
    except M2VEdgeError as exc:
        results.append({"ok": False, "type": type(exc).__name__, "message": str(exc)})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def hub(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("hub")
    cache = root / "hub_cache"
    populate_hub_cache(cache, "tiny-org/tiny-wordpiece", tiny_models.folder("wp-f32-L1"), COMMIT)
    populate_hub_cache(cache, "tiny-org/tiny-nested", tiny_models.folder("bpeunk-f32-w-L3"), OTHER_COMMIT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HOME=str(root / "hf_home"), HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    jobs = [
        {"source": "tiny-org/tiny-wordpiece", "out": str(root / "b-main")},
        {"source": "tiny-org/tiny-wordpiece", "out": str(root / "b-commit"), "revision": COMMIT},
        {"source": "tiny-org/tiny-nested", "out": str(root / "b-nested")},
        {"source": "tiny-org/not-cached", "out": str(root / "b-missing")},
        {"source": "tiny-org/tiny-wordpiece", "out": str(root / "b-bad-rev"), "revision": OTHER_COMMIT},
    ]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(jobs)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return {"root": root, "results": json.loads(done.stdout.strip().splitlines()[-1])}


def test_hub_id_exports_offline_from_the_cache(hub: dict, tiny_models: TinyModels) -> None:
    result = hub["results"][0]
    assert result["ok"], result
    assert result["source"]["id"] == "tiny-org/tiny-wordpiece"
    assert result["source"]["revision"] == COMMIT
    assert result["licences"] == ["LICENSE"]
    # Same graph as exporting the local folder the cache was filled from.
    bundle, local = hub["root"] / "b-main", tiny_models.bundle("wp-f32-L1")
    for name in ("model.fp32.onnx", "tokenizer.json", "LICENSE"):
        assert (bundle / name).read_bytes() == (local / name).read_bytes(), name
        assert not (bundle / name).is_symlink()


def test_hub_id_with_explicit_revision(hub: dict) -> None:
    result = hub["results"][1]
    assert result["ok"], result
    assert result["source"]["revision"] == COMMIT


def test_hub_id_with_nested_layout(hub: dict, tiny_models: TinyModels) -> None:
    result = hub["results"][2]
    assert result["ok"], result
    assert result["source"] == {
        "id": "tiny-org/tiny-nested",
        "revision": OTHER_COMMIT,
        "sha256": json.loads((tiny_models.bundle("bpeunk-f32-w-L3") / "m2v_edge.json").read_text())["source"]["sha256"],
    }
    assert (hub["root"] / "b-nested" / "model.fp32.onnx").read_bytes() == (
        tiny_models.bundle("bpeunk-f32-w-L3") / "model.fp32.onnx"
    ).read_bytes()


def test_uncached_hub_id_offline_is_a_clear_error(hub: dict) -> None:
    result = hub["results"][3]
    assert not result["ok"]
    assert result["type"] == "SourceModelError"
    assert "tiny-org/not-cached" in result["message"]
    assert "offline" in result["message"] and "cache" in result["message"]
    assert not (hub["root"] / "b-missing").exists()


def test_uncached_revision_offline_is_a_clear_error(hub: dict) -> None:
    result = hub["results"][4]
    assert not result["ok"]
    assert result["type"] == "SourceModelError"
    assert "tiny-org/tiny-wordpiece" in result["message"]
    assert OTHER_COMMIT in result["message"] and "cache" in result["message"]
    assert not (hub["root"] / "b-bad-rev").exists()
