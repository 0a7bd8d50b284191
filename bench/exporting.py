"""Export time and bundle size on disk, against the source model's files."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.stats import summarize

MODEL2VEC_FILES = ("config.json", "model.safetensors", "tokenizer.json")
"""What model2vec reads from the source folder to load the model (layout 1)."""


def time_exports(source: Path, variants: Sequence[str], repeat: int, keep: Path | None) -> dict[str, Any]:
    """Seconds per `export_model(source, ..., variants)` call, `repeat` calls into fresh folders.

    Imports happen before the first timed call, so the figure is the export itself. When `keep` is given the last
    export is left there (it becomes the benchmarked bundle); the others are deleted.
    """
    from m2v_edge.export import export_model

    seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="m2v-edge-bench-export-") as scratch:
        for index in range(repeat):
            last = index == repeat - 1
            out = keep if (last and keep is not None) else Path(scratch) / f"bundle-{index}"
            start = time.perf_counter()
            export_model(source, out, variants=tuple(variants), overwrite=True)
            seconds.append(time.perf_counter() - start)
            if out != keep:
                shutil.rmtree(out, ignore_errors=True)
    return {"variants": list(variants), "seconds": seconds, "summary": summarize(seconds).as_dict()}


def bundle_sizes(bundle: Path, source: Path) -> dict[str, Any]:
    """Bytes of each variant's graph and of everything a device needs for that variant, against the source.

    `deploy_bytes` = the variant's graph + tokenizer + manifest + licence files: the folder a device needs when it
    ships one variant. It is compared with what model2vec needs to load the source (config, safetensors, tokenizer).
    """
    from m2v_edge.bundle import MANIFEST_FILE, read_manifest

    manifest = read_manifest(bundle)
    shared = (
        manifest.tokenizer.size
        + (bundle / MANIFEST_FILE).stat().st_size
        + sum(entry.size for entry in manifest.licence_files)
    )
    safetensors = (source / "model.safetensors").stat().st_size
    model2vec_files = sum((source / name).stat().st_size for name in MODEL2VEC_FILES if (source / name).exists())
    variants = {
        variant: {
            "file": entry.file,
            "graph_bytes": manifest.variant_size(variant),
            "deploy_bytes": manifest.variant_size(variant) + shared,
            "graph_to_safetensors": manifest.variant_size(variant) / safetensors,
            "deploy_to_model2vec_files": (manifest.variant_size(variant) + shared) / model2vec_files,
        }
        for variant, entry in manifest.variants.items()
    }
    return {
        "bundle": str(bundle),
        "variants": variants,
        "shared_bytes": shared,
        "bundle_total_bytes": sum(p.stat().st_size for p in bundle.iterdir() if p.is_file()),
        "source_safetensors_bytes": safetensors,
        "source_model2vec_files_bytes": model2vec_files,
    }
