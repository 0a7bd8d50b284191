"""`python -m bench`: m2v-edge against model2vec, laghu, fastembed and the bare tokenizer pass (issues 3 and 16).

English: potion-base-8M on the Debian texts, also with non-ASCII characters mixed in. Multilingual
(`bench.multilingual`): the real tokenlearn-static-model and a 500k-piece Unigram model on Debian's translations.
Writes `bench/results/<date>-<host>.md` (also printed), the JSON beside it and PNG charts. `--smoke` runs a few
hundred texts once, for CI: it checks that the benchmark works and asserts no figure.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import coldstart, exporting, multilingual, quality, report, targets, throughput
from bench.corpus import Corpus, load_corpus
from bench.machine import load_average, machine_info
from bench.nonascii import with_non_ascii
from bench.systems import FASTEMBED, FASTEMBED_MODEL, FLOOR, IMPORTS, LAGHU, REFERENCE, build_lineup, edge_key
from bench.paths import DEBIAN_DATA, POTION_MODEL, REPO

ENVIRONMENT = dict(os.environ)
"""Python's view of the environment, passed explicitly to every child (see `bench.coldstart.run_child`)."""
DEFAULT_MULTILINGUAL_DATA = REPO / "bench" / "data" / "debian-descriptions-multilingual-public.jsonl"
EXPORT_VARIANTS = ("fp32", "fp16", "int8")
PROCESS_VARIANTS = ("int8", "fp32")
SMOKE_TEXTS = 300
SMOKE_LATENCY_CALLS = 200


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_TEXTS} texts, one round, no figure asserted")
    parser.add_argument("--data", type=Path, default=DEBIAN_DATA, help="JSONL corpus with query and document fields")
    parser.add_argument("--model", type=Path, default=POTION_MODEL, help="the Model2Vec source folder")
    parser.add_argument("--bundle", type=Path, help="an existing bundle to benchmark (default: export into a temp dir)")
    parser.add_argument("--repeat", type=int, help="rounds per figure (default 5; 1 with --smoke)")
    parser.add_argument("--limit", type=int, help="use the first N lines of the corpus (default: all)")
    parser.add_argument("--latency-calls", type=int, default=2000, help="single-text calls per latency round")
    parser.add_argument("--threads", type=int, help="m2v-edge onnxruntime threads (default: the device profile's)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="where reports are written")
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    parser.add_argument(
        "--multilingual-data",
        type=Path,
        default=DEFAULT_MULTILINGUAL_DATA,
        help="JSONL corpus for the multilingual section",
    )
    parser.add_argument("--no-multilingual", action="store_true", help="skip the multilingual section")
    parser.add_argument(
        "--no-large-multilingual",
        dest="large_multilingual",
        action="store_false",
        help="skip the 500k-piece multilingual model (about 6 of the run's minutes, 3 GB of memory at the peak)",
    )
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.smoke else 5
    if args.smoke:
        args.limit = min(args.limit or SMOKE_TEXTS, SMOKE_TEXTS)
        args.latency_calls = min(args.latency_calls, SMOKE_LATENCY_CALLS)
    if args.repeat < 1 or args.latency_calls < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--repeat, --latency-calls and --limit must be at least 1")
    if not args.data.is_file():
        parser.error(f"--data {args.data}: no such file")
    if not args.no_multilingual and not args.multilingual_data.is_file():
        parser.error(f"--multilingual-data {args.multilingual_data}: no such file (or pass --no-multilingual)")
    if not args.model.is_dir():
        parser.error(f"--model {args.model}: not a folder")
    if args.bundle is not None and not (args.bundle / "m2v_edge.json").is_file():
        parser.error(f"--bundle {args.bundle}: not an m2v-edge bundle (no m2v_edge.json); omit it to export one")
    return args


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries the report)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _notes(fastembed_class: str | None) -> list[str]:
    fastembed = (
        f"fastembed loads `{FASTEMBED_MODEL}` with `specific_model_path` pointing at the source model folder; "
        f"fastembed {_version('fastembed')} runs it with `{fastembed_class}`: numpy pooling over `model.safetensors` "
        "with its own `tokenizer.json` settings (truncation 512, no padding, unk removed, no character pre-cut). "
        "It needs no ONNX file, so no graph was built for it and nothing was downloaded."
        if fastembed_class
        else "fastembed could not be measured (see Not measured)."
    )
    return [
        fastembed,
        (
            f"laghu {_version('laghu')} with laghu-rs {_version('laghu-rs')} loads each source model folder with "
            "`load(folder, fallback=False)` (so that a model it cannot read is reported, not measured as model2vec); "
            "which tokenizer it chose per model (laghu-rs, its Python Unigram or tokenizers) is listed with the "
            "systems. Its Unigram vocabulary files go to a scratch LAGHU_CACHE, built in the untimed warm-up."
        ),
        (
            "Throughput: each timed call encodes the whole set in one call, the way each library is used "
            "(m2v-edge `encode(list)`, model2vec and laghu `encode(list)`, fastembed `list(embed(list))`); garbage "
            "collection paused during calls; untimed warm-up calls first."
        ),
        (
            "Non-ASCII sets: the same English texts with straight quotes and apostrophes made typographic "
            "(U+201C/U+201D, U+2018/U+2019), ' - ' and '--' made en and em dashes, and an accented name signed after "
            "an en dash (`bench/nonascii.py`, deterministic); every text holds at least one non-ASCII character."
        ),
        (
            "Private memory: `RssAnon` (/proc/self/status) of the same fresh process right after its `encode` call, "
            "with the vectors still alive: memory no other process can share. Pages mapped from files count in "
            "`RssFile` instead and are shared between processes mapping the same file."
        ),
        (
            "The tokenizer floor times only `encode_batch_fast`; its texts are cut to the bundle's character limit "
            "before the timer starts."
        ),
        (
            "Cold start: fresh `python bench/child.py` processes, from just before spawn to the first vector "
            "(interpreter start, import, load, one query encoded); an untimed first round warms the page cache. "
            "m2v-edge's byte code is compiled before, as `pip install` compiles every package (its editable install "
            "would otherwise be compiled from source in each child under PYTHONDONTWRITEBYTECODE)."
        ),
        (
            "Peak RSS: `VmHWM` (/proc/self/status) of a fresh process that reads the documents, imports, loads and "
            "encodes them in one call; 'RSS before import' is the same process after reading the texts. Not "
            "`ru_maxrss`: Linux carries the parent's high-water mark into an exec'd child's `ru_maxrss` (and the "
            "parent's RUSAGE_CHILDREN), which made every child report the benchmark's own size. The tokenizers floor "
            "row imports numpy, onnxruntime and tokenizers and only tokenizes; the runtime imports row only imports "
            "them (no model, nothing encoded): no runtime built on these libraries can peak lower."
        ),
        (
            "Quality: cosine on L2-normalised vectors, every query against all documents, ties broken by document "
            "order; m2v-edge's vectors are also compared with model2vec's (min cosine over all queries and documents)."
        ),
        (
            "Export time is the `export_model` call alone (imports done before). model2vec's own ONNX exporter is not "
            "run here: it needs torch, which m2v-edge avoids."
        ),
    ]


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure everything; return the JSON-ready results."""
    began = time.monotonic()
    corpus = load_corpus(args.data, args.limit)
    results: dict[str, Any] = {}
    meta: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "smoke": args.smoke,
        "repeat": args.repeat,
        "load_average_start": load_average(),
        "machine": machine_info(REPO),
        "data": {"path": str(args.data), "sha256": corpus.sha256, "stats": corpus.stats()},
        "model_dir": str(args.model),
    }
    with tempfile.TemporaryDirectory(prefix="m2v-edge-bench-") as scratch:
        # laghu writes a vocabulary file per Unigram tokenizer.json into its cache: here, not the user's ~/.cache.
        ENVIRONMENT["LAGHU_CACHE"] = os.environ["LAGHU_CACHE"] = str(Path(scratch) / "laghu-cache")
        keep = None if args.bundle else Path(scratch) / "bundle"
        progress(f"exporting {', '.join(EXPORT_VARIANTS)} x{args.repeat}")
        results["export"] = exporting.time_exports(args.model, EXPORT_VARIANTS, args.repeat, keep)
        bundle = args.bundle or keep
        assert bundle is not None
        meta["bundle"] = str(bundle)
        results["bundle_sizes"] = exporting.bundle_sizes(bundle, args.model)
        variants = list(results["bundle_sizes"]["variants"])
        _processes(args, bundle, corpus.queries[0], results, meta)
        _in_process(args, bundle, variants, corpus, results, meta)
        if not args.no_multilingual:
            results["multilingual"] = _multilingual(args, Path(scratch) / "multilingual")
    results["targets"] = targets.evaluate(results)
    results["targets_native_core"] = targets.evaluate_native_core(results)
    meta["load_average_end"] = load_average()
    meta["duration_s"] = round(time.monotonic() - began, 1)
    results = {"meta": meta, **results}
    return results


def _processes(
    args: argparse.Namespace, bundle: Path, text: str, results: dict[str, Any], meta: dict[str, Any]
) -> None:
    from m2v_edge.bundle import read_manifest

    manifest = read_manifest(bundle)
    spec = {
        "bundle": str(bundle),
        "model_dir": str(args.model),
        "data": str(args.data),
        "threads": args.threads,
        "limit": args.limit if args.limit is not None else 1 << 62,
        "text": text,
        "fastembed_model": FASTEMBED_MODEL,
        "max_length": manifest.max_length,
        "char_limit": manifest.char_limit,
    }
    systems = [edge_key(v) for v in PROCESS_VARIANTS if v in manifest.variants] + [REFERENCE]
    if importlib.util.find_spec("laghu") is not None:
        systems.append(LAGHU)
    if importlib.util.find_spec("fastembed") is not None:
        systems.append(FASTEMBED)
    systems += [FLOOR, IMPORTS]
    progress(f"cold start x{args.repeat}: {', '.join(systems)}")
    coldstart.compile_installed_bytecode()
    results["coldstart"], failed_cold = coldstart.measure_coldstart(systems, spec, ENVIRONMENT, args.repeat, progress)
    progress(f"peak RSS x{args.repeat}")
    results["peak_rss"], failed_rss = coldstart.measure_peak_rss(systems, spec, ENVIRONMENT, args.repeat, progress)
    meta["process_failures"] = {f"{k} (cold start)": v for k, v in failed_cold.items()} | {
        f"{k} (peak RSS)": v for k, v in failed_rss.items()
    }


def _in_process(
    args: argparse.Namespace,
    bundle: Path,
    variants: list[str],
    corpus: Corpus,
    results: dict[str, Any],
    meta: dict[str, Any],
) -> None:
    progress("loading systems in this process")
    lineup = build_lineup(bundle, args.model, variants, args.threads)
    if importlib.util.find_spec("fastembed") is None:
        lineup.unavailable[FASTEMBED] = "the fastembed package is not installed (pip install -e '.[bench]')"
    meta["systems"] = {s.key: s.description for s in lineup.systems}
    meta["settings"] = lineup.settings
    meta["unavailable"] = lineup.unavailable | meta.pop("process_failures", {})
    fastembed_class = lineup.settings.get(FASTEMBED, {}).get("class")
    meta["notes"] = _notes(fastembed_class)
    sets = {"queries": corpus.queries, "documents": corpus.documents}
    sets |= {f"{name}, non-ASCII": with_non_ascii(texts) for name, texts in list(sets.items())}
    progress("warming up")
    throughput.warm_up(lineup.systems, sets)
    progress(f"throughput x{args.repeat}")
    results["throughput"] = throughput.measure_throughput(lineup.systems, sets, args.repeat, progress)
    texts = corpus.queries[: args.latency_calls]
    progress(f"latency x{args.repeat} ({len(texts)} calls each)")
    results["latency"], samples = throughput.measure_latency(lineup.systems, texts, args.repeat, progress)
    progress("retrieval quality")
    results["quality"] = quality.measure_quality(lineup.systems, corpus.queries, corpus.documents)
    progress("agreement with model2vec")
    results["agreement"] = quality.measure_agreement(lineup.systems, sets)
    results["_latency_samples"] = samples  # for the chart only; dropped before writing the JSON


def _multilingual(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    options = {
        "threads": args.threads,
        "repeat": args.repeat,
        "latency_calls": args.latency_calls,
        "limit": args.limit,
        "large": args.large_multilingual,
        "smoke": args.smoke,
    }
    progress("multilingual section")
    return multilingual.run(args.multilingual_data, work, options, ENVIRONMENT, progress)


def _charts(results: dict[str, Any], out_dir: Path, stem: str) -> list[str]:
    samples = results.pop("_latency_samples")
    try:
        from bench import charts
    except ImportError as exc:
        results["meta"]["notes"].append(f"No charts: {exc} (install the bench extra).")
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"potion-base-8M on {results['meta']['machine']['hostname']}, {results['meta']['date']}"
    try:
        return [
            str(charts.throughput_chart(results["throughput"], title, out_dir / f"{stem}-throughput.png")),
            str(charts.latency_chart(samples, title, out_dir / f"{stem}-latency.png")),
        ]
    except ImportError as exc:  # matplotlib itself is imported lazily by the chart functions
        results["meta"]["notes"].append(f"No charts: {exc} (install the bench extra).")
        return []


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the Markdown report and write it with the JSON and charts."""
    args = parse_args(argv)
    results = run(args)
    stem = f"{results['meta']['date']}-{socket.gethostname()}" + ("-smoke" if args.smoke else "")
    if args.no_charts:
        results.pop("_latency_samples")
        results["charts"] = []
    else:
        results["charts"] = _charts(results, args.out, stem)
    markdown = report.render_markdown(results)
    md_path, json_path = report.write_report(results, markdown, args.out, stem)
    print(markdown)
    progress(f"wrote {md_path}, {json_path} and {len(results['charts'])} charts in {results['meta']['duration_s']} s")
    failed = results.get("multilingual", {}).get("failed", {})
    if args.smoke and failed:  # CI runs the smoke run to check that every part of the benchmark still works
        progress(f"smoke run failed: multilingual {', '.join(failed)} (see the report)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
