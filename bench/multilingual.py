"""The multilingual section (issue 16): m2v-edge, model2vec and laghu on Debian's translated package descriptions.

Two Unigram models, each exported to an fp32 and int8 bundle:
- `tokenlearn-static-model`: the real Model2Vec folder inside that PyPI package (`static_model/model/`): an int8
  table with a token mapping and weights, and a 276k-piece multilingual Unigram tokenizer.
- a 500,353-piece Unigram model of potion-multilingual-128M's shape (256 dims, random float32 table, 512 MB), built
  into the scratch folder by `bench.multilingual_model.build_multilingual_model` (never committed).

Per model: throughput and single-text latency in this process (systems alternating within rounds, as for English),
agreement with model2vec's vectors, peak RSS and private memory of fresh processes encoding all documents in one
call, and the int8 bundle on the `raspberry-pi-zero-2w` profile in two processes alive at once (issue 16's memory
target is measured that way).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import coldstart, sharing, throughput
from bench.corpus import Corpus, load_corpus
from bench.multilingual_model import DIM, PIECES, build_multilingual_model, tokenlearn_tokenizer_file
from bench.quality import measure_agreement
from bench.systems import LAGHU, LAGHU_RS_PATH, REFERENCE, build_lineup, edge_key, laghu_system

TOKENLEARN = "tokenlearn-static-model"
LARGE = "500k Unigram"
SMOKE_LARGE_PIECES = 20_000
"""The smoke run's stand-in for the 500k model: the first 20,000 tokenlearn pieces and 8 dims, so that CI runs the
code path in seconds without writing the 512 MB table."""
SMOKE_LARGE_DIM = 8
VARIANTS = ("fp32", "int8")
MEMORY_ROUNDS = 3
"""Rounds of the fresh-process memory figures (at most): they vary by well under 1% between rounds, and each round
of the 500k model loads its 512 MB table in four processes."""
ZERO_PROFILE = "raspberry-pi-zero-2w"
ZERO_VARIANT = "int8"

Progress = Callable[[str], None]


def tokenlearn_model_dir() -> Path:
    """The Model2Vec folder shipped inside the `tokenlearn-static-model` package (found without importing it)."""
    folder = tokenlearn_tokenizer_file().parent
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"{folder}: no model.safetensors in tokenlearn-static-model's package folder")
    return folder


def build_large_model(folder: Path, smoke: bool) -> dict[str, Any]:
    """Build the 500k model (or the smoke run's small stand-in) into `folder`; return its source and shape."""
    pieces, dim = (SMOKE_LARGE_PIECES, SMOKE_LARGE_DIM) if smoke else (PIECES, DIM)
    start = time.perf_counter()
    build_multilingual_model(folder, pieces=pieces, dim=dim, seed=0)
    return {"folder": str(folder), "pieces": pieces, "dim": dim, "build_s": time.perf_counter() - start}


def describe_source(model_dir: Path) -> dict[str, Any]:
    """The tensors of the source's `model.safetensors` (shape, dtype) and its tokenizer's type and piece count."""
    from safetensors import safe_open

    tensors = {}
    with safe_open(str(model_dir / "model.safetensors"), framework="numpy") as handle:
        for name in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
            piece = handle.get_slice(name)
            tensors[name] = {"shape": list(piece.get_shape()), "dtype": str(piece.get_dtype())}
    model = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    return {"tensors": tensors, "tokenizer": model.get("type"), "pieces": len(model.get("vocab", ()))}


def laghu_rs_copy(model_dir: Path, out: Path) -> Path:
    """A copy of `model_dir` on which laghu takes its laghu-rs Unigram path: tokenizer.json without padding and
    without `single_word` added tokens, the table and config linked, not copied.

    tokenlearn-static-model's tokenizer.json (and so the 500k model built from it) pads and marks `<pad>` as a
    `single_word` added token; on either, laghu 0.4 tokenizes with `tokenizers` instead (its README: "When laghu
    does not use Rust"), while its README lists potion-multilingual-128M itself on the Rust path. model2vec turns
    padding off, and `single_word` only matters for a text holding the literal `<pad>`, so model2vec's vectors on the
    original folder stay the reference for both.
    """
    out.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json"):
        (out / name).symlink_to((model_dir / name).resolve())
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["padding"] = None
    for token in tokenizer.get("added_tokens", []):
        token["single_word"] = False
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    return out


def _export(model_dir: Path, out: Path) -> dict[str, Any]:
    from m2v_edge.export import export_model

    start = time.perf_counter()
    export_model(model_dir, out, variants=VARIANTS, overwrite=True)
    return {"bundle": str(out), "variants": list(VARIANTS), "export_s": time.perf_counter() - start}


@dataclass(frozen=True)
class Folders:
    """The folders of one model: its source, its m2v-edge bundle and the copy laghu takes its Rust path on."""

    source: Path
    bundle: Path
    laghu_rs: Path


def _in_process(
    folders: Folders, sets: dict[str, list[str]], options: Mapping[str, Any], progress: Progress
) -> dict[str, Any]:
    """Throughput, latency and agreement with model2vec of every system, loaded together in this process."""
    lineup = build_lineup(folders.bundle, folders.source, VARIANTS, options["threads"], fastembed_and_floor=False)
    if LAGHU in {s.key for s in lineup.systems}:
        try:
            lineup.systems.append(laghu_system(folders.laghu_rs, lineup.settings, LAGHU_RS_PATH))
        except Exception as exc:  # noqa: BLE001 - reported with the model, as build_lineup reports the others
            lineup.unavailable[LAGHU_RS_PATH] = f"{type(exc).__name__}: {exc}"
    found = {"settings": lineup.settings, "unavailable": lineup.unavailable}
    try:
        throughput.warm_up(lineup.systems, sets)
        progress(f"throughput x{options['repeat']}")
        found["throughput"] = throughput.measure_throughput(lineup.systems, sets, options["repeat"], progress)
        texts = sets["queries"][: options["latency_calls"]]
        progress(f"latency x{options['repeat']} ({len(texts)} calls each)")
        found["latency"], _ = throughput.measure_latency(lineup.systems, texts, options["repeat"], progress)
        progress("agreement with model2vec")
        found["agreement"] = measure_agreement(lineup.systems, sets)
    finally:
        del lineup  # free the tables before the child processes start
        gc.collect()
    return found


def _processes(
    folders: Folders, data: Path, options: Mapping[str, Any], env: Mapping[str, str], progress: Progress
) -> dict[str, Any]:
    """Peak RSS and private memory of fresh processes, and the int8 bundle on the Zero 2 W profile in two at once."""
    spec = {
        "bundle": str(folders.bundle),
        "model_dir": str(folders.source),
        "model_dirs": {LAGHU_RS_PATH: str(folders.laghu_rs)},
        "data": str(data),
        "threads": options["threads"],
        "limit": options["limit"] if options["limit"] is not None else 1 << 62,
    }
    systems = [edge_key(v) for v in VARIANTS] + [REFERENCE]
    if importlib.util.find_spec("laghu") is not None:
        systems += [LAGHU, LAGHU_RS_PATH]
    rounds = min(options["repeat"], MEMORY_ROUNDS)
    progress(f"peak RSS and private memory x{rounds}")
    peak, failed = coldstart.measure_peak_rss(systems, spec, env, rounds, progress)
    zero = dict(spec, profile=ZERO_PROFILE, threads=None)
    progress(f"{edge_key(ZERO_VARIANT)} on {ZERO_PROFILE}, two processes on one bundle x{rounds}")
    try:
        pair = sharing.measure_pair(edge_key(ZERO_VARIANT), zero, env, rounds, progress)
    except coldstart.ChildError as exc:
        pair, failed = None, failed | {f"{edge_key(ZERO_VARIANT)} on {ZERO_PROFILE}": str(exc)}
    return {"peak_rss": peak, "zero_2w_pair": pair, "process_failures": failed, "memory_rounds": rounds}


def measure_model(
    name: str,
    model_dir: Path,
    corpus: Corpus,
    work: Path,
    options: Mapping[str, Any],
    env: Mapping[str, str],
    progress: Progress,
) -> dict[str, Any]:
    """Every multilingual figure of one model: export, in-process timings and agreement, process memory."""

    def step(message: str) -> None:
        progress(f"{name}: {message}")

    step(f"exporting {', '.join(VARIANTS)}")
    export = _export(model_dir, work / "bundle")
    folders = Folders(model_dir, Path(export["bundle"]), laghu_rs_copy(model_dir, work / "laghu-rs-copy"))
    sets = {"queries": corpus.queries, "documents": corpus.documents}
    results: dict[str, Any] = {"model_dir": str(model_dir), "source": describe_source(model_dir), "export": export}
    results |= _in_process(folders, sets, options, step)
    results |= _processes(folders, corpus.path, options, env, step)
    return results


def run(
    data: Path, work: Path, options: Mapping[str, Any], env: Mapping[str, str], progress: Progress
) -> dict[str, Any]:
    """The whole multilingual section: both models unless `options["large"]` is false.

    A model left out or not available here is listed under `unavailable`; one whose measurement raised is listed
    under `failed` with the error, and the other model is still measured.
    """
    corpus = load_corpus(data, options["limit"])
    results: dict[str, Any] = {
        "data": {"path": str(data), "sha256": corpus.sha256, "stats": corpus.stats()},
        "models": {},
        "unavailable": {},
        "failed": {},
    }
    try:
        sources = {TOKENLEARN: tokenlearn_model_dir()}
    except (ImportError, OSError) as exc:
        sources = {}
        results["unavailable"][TOKENLEARN] = f"{type(exc).__name__}: {exc}"
    if not options["large"]:
        results["unavailable"][LARGE] = "left out with --no-large-multilingual"
    else:
        try:
            progress(f"{LARGE}: building the model")
            results["large_model"] = build_large_model(work / "large-source", options["smoke"])
            sources[LARGE] = Path(results["large_model"]["folder"])
        except (ImportError, OSError) as exc:  # built from tokenlearn-static-model's tokenizer
            results["unavailable"][LARGE] = f"{type(exc).__name__}: {exc}"
    for name, source in sources.items():
        try:
            results["models"][name] = measure_model(
                name, source, corpus, work / name.replace(" ", "-"), options, env, progress
            )
        except Exception as exc:  # noqa: BLE001 - reported with the section; the English figures stay
            results["failed"][name] = f"{type(exc).__name__}: {exc}"
            progress(f"{name}: failed: {results['failed'][name]}")
    return results
