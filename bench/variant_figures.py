"""Figures per bundle variant and dimensionality (issue 7): bytes, retrieval quality, closeness to fp32, throughput.

Every figure of one dimensionality comes from one bundle exported with all four variants at that dimensionality,
so sizes, vectors and speed belong to exactly the files a device would get.
"""

from __future__ import annotations

import dataclasses
import gc
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.quality import relevant_ranks, retrieval_metrics
from bench.stats import Progress, paired_ratios, summarize

VARIANTS = ("fp32", "fp16", "int8", "int4")
DIMS = (256, 128, 64)
BLOCK_SIZES = (16, 32, 64, 128, 256)


def unit_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine; two zero rows count as equal (1), one zero row against a non-zero one as 0."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a64, axis=1), np.linalg.norm(b64, axis=1)
    both_zero = (na == 0) & (nb == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (a64 * b64).sum(axis=1) / (na * nb)
    return np.where(both_zero, 1.0, np.nan_to_num(cos, nan=0.0))


def table_bytes(model_dir: Path) -> int:
    """Bytes of the source table as float32 (rows x dim x 4), whatever its stored dtype."""
    from m2v_edge.export.source import load_source

    table = load_source(model_dir).table
    return int(table.shape[0] * table.shape[1] * 4)


def export_dims(model_dir: Path, work: Path, dims: Sequence[int]) -> dict[int, Path]:
    """One bundle per dimensionality, with every variant; the full dim is exported without `dimensionality`."""
    from m2v_edge.export import export_model
    from m2v_edge.export.source import load_source

    full = int(load_source(model_dir).table.shape[1])
    return {
        dim: export_model(
            model_dir, work / f"bundle-{dim}", variants=VARIANTS, dimensionality=None if dim == full else dim
        )
        for dim in dims
    }


def sizes(bundle: Path, source_table_bytes: int) -> dict[str, dict[str, float]]:
    """Per variant: the graph's bytes and the one-variant deployment's (graph, tokenizer, manifest, licences)."""
    from m2v_edge.bundle import MANIFEST_FILE, read_manifest

    manifest = read_manifest(bundle)
    shared = (
        manifest.tokenizer.size
        + (bundle / MANIFEST_FILE).stat().st_size
        + sum(entry.size for entry in manifest.licence_files)
    )
    return {
        variant: {
            "graph_bytes": manifest.variant_size(variant),
            "deploy_bytes": manifest.variant_size(variant) + shared,
            "graph_to_fp32_table": manifest.variant_size(variant) / source_table_bytes,
            "deploy_to_fp32_table": (manifest.variant_size(variant) + shared) / source_table_bytes,
        }
        for variant in manifest.variants
    }


def vectors(bundle: Path, variant: str, queries: list[str], documents: list[str], threads: int | None):
    """(queries, documents) vectors of one variant."""
    from m2v_edge.runtime import EdgeEmbedder

    embedder = EdgeEmbedder(bundle, variant=variant, threads=threads)
    return embedder.encode(queries), embedder.encode(documents)


def quality(pair: tuple[np.ndarray, np.ndarray], fp32: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """nDCG@10, Recall@10, MRR, and the mean and minimum cosine of all query and document vectors to fp32's."""
    metrics = retrieval_metrics(relevant_ranks(*pair))
    cos = np.concatenate([unit_cosines(pair[0], fp32[0]), unit_cosines(pair[1], fp32[1])])
    return metrics | {"mean_cosine_to_fp32": float(cos.mean()), "min_cosine_to_fp32": float(cos.min())}


def throughput(
    bundles: dict[int, Path],
    sets: dict[str, list[str]],
    repeat: int,
    threads: int | None,
    progress: Progress = None,
) -> dict[str, Any]:
    """Texts/s of every (dim, variant) on each text set, all of them in turn per round (rotated start), one
    whole-set `encode` call per figure; ratios to fp32 at the same dim are paired by round."""
    from m2v_edge.runtime import EdgeEmbedder

    embedders = {
        (dim, variant): EdgeEmbedder(bundle, variant=variant, threads=threads)
        for dim, bundle in bundles.items()
        for variant in VARIANTS
    }
    for embedder in embedders.values():  # untimed: arenas, first-call costs
        for texts in sets.values():
            embedder.encode(texts[:256])
    keys = list(embedders)
    samples: dict[str, dict[tuple[int, str], list[float]]] = {name: {key: [] for key in keys} for name in sets}
    for round_index in range(repeat):
        for set_index, (name, texts) in enumerate(sets.items()):
            shift = (round_index * 5 + set_index) % len(keys)
            for key in keys[shift:] + keys[:shift]:
                gc.collect()
                gc.disable()
                try:
                    start = time.perf_counter()
                    embedders[key].encode(texts)
                    elapsed = time.perf_counter() - start
                finally:
                    gc.enable()
                samples[name][key].append(len(texts) / elapsed)
        if progress is not None:
            progress(f"throughput round {round_index + 1}/{repeat}")
    any_embedder = next(iter(embedders.values()))
    results: dict[str, Any] = {
        "settings": {
            "profile": any_embedder.profile.name,
            "intra_op_threads": any_embedder.session.get_session_options().intra_op_num_threads,
            "token_budget": any_embedder.token_budget,
        }
    }
    for dim, variant in keys:
        entry = {}
        for name in sets:
            values = samples[name][(dim, variant)]
            entry[name] = {
                "texts_per_s": values,
                "summary": summarize(values).as_dict(),
                "ratio_to_fp32": summarize(paired_ratios(values, samples[name][(dim, "fp32")])).as_dict(),
            }
        results[f"{variant}@{dim}"] = entry
    return results


def block_sweep(
    model_dir: Path,
    bundle: Path,
    work: Path,
    fp32: tuple[np.ndarray, np.ndarray],
    texts: tuple[list[str], list[str]],
    source_table_bytes: int,
    block_sizes: Sequence[int] = BLOCK_SIZES,
) -> dict[int, dict[str, float]]:
    """The int4 variant of `bundle` rebuilt at other block sizes: bytes and quality per block size.

    Each rebuild swaps the bundle's int4 graph for one made by the exporter's own functions with another block size
    and updates the manifest entry, so the vectors come from a real graph run by the runtime.
    """
    from m2v_edge import __version__
    from m2v_edge.bundle import FileEntry, Int4Packing, TableFile, model_file, read_manifest, table_file, write_manifest
    from m2v_edge.export.data_file import DataFileWriter
    from m2v_edge.export.graph import build_graph
    from m2v_edge.export.quantize import quantize_int4
    from m2v_edge.export.source import load_source

    src = load_source(model_dir)
    manifest = read_manifest(bundle)
    source = src.table.truncated(manifest.dim)
    table = source.rows(0, source.shape[0])
    results = {}
    for block_size in block_sizes:
        copy = Path(shutil.copytree(bundle, work / f"int4-block-{block_size}"))
        stored = quantize_int4(table, block_size)
        with DataFileWriter(copy / table_file("int4")) as writer:
            writer.add("table", stored.values)
            writer.add("scales", stored.scales)
            for name, values in (("mapping", src.mapping), ("weights", src.weights)):
                if values is not None:
                    writer.add(name, values.astype(np.int64 if name == "mapping" else np.float32))
            sha256, size = writer.close()
        data = TableFile(table_file("int4"), sha256, size, arrays=dict(writer.arrays), int4=Int4Packing(block_size))
        model = build_graph(
            data, dim=manifest.dim, unk_id=manifest.unk_id, normalize=manifest.normalize, producer_version=__version__
        )
        (copy / model_file("int4")).write_bytes(model.SerializeToString())
        entries = dict(manifest.variants, int4=FileEntry.of(copy, model_file("int4")))
        write_manifest(copy, dataclasses.replace(manifest, variants=entries, tables={**manifest.tables, "int4": data}))
        figures = sizes(copy, source_table_bytes)["int4"]
        figures |= quality(vectors(copy, "int4", *texts, threads=None), fp32)
        results[block_size] = figures
        shutil.rmtree(copy, ignore_errors=True)
    return results
