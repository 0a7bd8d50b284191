"""The Markdown report (ASCII only, so any terminal prints it) and the JSON written beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report_multilingual import render_multilingual
from bench.systems import IMPORTS
from bench.tables import agreement_table, latency_table, ratio, span, table, targets_table, throughput_table
from bench.targets import NON_ASCII_SETS
from bench.targets import SETS as ENGLISH_SETS

MIB = 1024 * 1024


def _machine(meta: dict[str, Any]) -> list[str]:
    m = meta["machine"]
    libs = ", ".join(f"{name} {version}" for name, version in m["libraries"].items() if version)
    data = meta["data"]
    return [
        (
            f"- Machine: {m['cpu_model']} ({m['architecture']}), {m['logical_cpus']} logical CPUs "
            f"({m['usable_cpus']} usable, cgroup limit {m['cgroup_cpu_limit'] or 'none'}), {m['memory_mib']} MiB RAM, "
            f"Linux {m['kernel']}"
        ),
        f"- Python {m['python']}; {libs}; full list of installed distributions in the JSON",
        (
            f"- Load average at start {meta['load_average_start']}, at end {meta['load_average_end']}; "
            f"git {str(m['git_commit'])[:12]}{' (uncommitted changes)' if m['git_dirty'] else ''}"
        ),
        (
            f"- Data: `{data['path']}` (sha256 {data['sha256'][:12]}), {data['stats']['texts']} queries "
            f"(mean {data['stats']['query_chars_mean']:.0f} chars) and {data['stats']['texts']} documents "
            f"(mean {data['stats']['document_chars_mean']:.0f}, max {data['stats']['document_chars_max']} chars)"
        ),
        (
            f"- Rounds per figure: {meta['repeat']}; systems alternate within each round (order rotated); "
            "figures are median [min-max] over rounds; ratios to model2vec and to laghu are paired by round, then "
            "summarised"
        ),
        f"- Environment: {', '.join(f'{k}={v}' for k, v in m['environment'].items() if v is not None) or 'none set'}",
        "",
    ]


def _throughput(results: dict[str, Any]) -> list[str]:
    sets = results["throughput"]
    lines = throughput_table("## Throughput (texts/s)", sets, ENGLISH_SETS)
    if all(name in sets for name in NON_ASCII_SETS):
        title = "## Throughput with non-ASCII characters mixed in (texts/s; the same texts, see Notes)"
        lines += throughput_table(title, sets, NON_ASCII_SETS)
    return lines


def _latency(results: dict[str, Any]) -> list[str]:
    lat = results["latency"]
    calls = next(iter(lat.values()))["calls_per_pass"] if lat else 0
    title = f"## Single-text latency (microseconds; one query per call, {calls} calls per round)"
    return latency_table(title, lat)


def _processes(results: dict[str, Any]) -> list[str]:
    cold, rss = results["coldstart"], results["peak_rss"]
    parts = ("interpreter_s", "import_s", "load_s", "first_vector_s")
    rows = []
    for key in dict.fromkeys([*cold, *rss]):
        c, r = cold.get(key), rss.get(key)
        rows.append(
            [
                key,
                span(c["summary"], ".3f") if c else "-",
                ratio(c.get("ratio_to_model2vec"), key) if c else "-",
                " / ".join(f"{c['parts'][p]['median']:.3f}" for p in parts) if c else "-",
                span(r["summary"], ".1f") if r else "-",
                ratio(r.get("ratio_to_model2vec"), key) if r else "-",
                span(r.get("private_mib"), ".1f") if r else "-",
                f"{c['max_rss_mib']['median']:.1f}" if c else "-",
                f"{r['before_import_mib']['median']:.1f}" if r else "-",
            ]
        )
    texts = next(iter(rss.values()))["texts"] if rss else 0
    header = [
        "system",
        "cold start",
        "x model2vec",
        "interpreter / import / load / first vector (medians)",
        f"peak RSS, {texts} documents",
        "x model2vec",
        "private memory after encoding them (RssAnon)",
        "peak RSS, one text",
        "RSS before import",
    ]
    title = "## Cold start (s, spawn to first vector), peak RSS and private memory (MiB) of fresh processes"
    return [title, "", *table(header, rows)]


def _bundle(results: dict[str, Any]) -> list[str]:
    sizes, export = results["bundle_sizes"], results["export"]
    rows = [
        [
            variant,
            f"{v['graph_bytes'] / MIB:.2f}",
            f"{v['graph_to_safetensors']:.3f}",
            f"{v['deploy_bytes'] / MIB:.2f}",
            f"{v['deploy_to_model2vec_files']:.3f}",
        ]
        for variant, v in sizes["variants"].items()
    ]
    return (
        ["## Bundle size on disk (MiB) and export time", ""]
        + table(
            [
                "variant",
                "graph",
                "x source safetensors",
                "deployed (graph, tokenizer, manifest, licences)",
                "x model2vec's files",
            ],
            rows,
        )
        + [
            (
                f"Source `model.safetensors` {sizes['source_safetensors_bytes'] / MIB:.2f} MiB; model2vec loads "
                f"{sizes['source_model2vec_files_bytes'] / MIB:.2f} MiB (config, safetensors, tokenizer). "
                f"Export of {', '.join(export['variants'])} in one `export_model` call: "
                f"{span(export['summary'], '.2f')} s "
                f"({export['summary']['n']} calls, imports excluded)."
            ),
            "",
        ]
    )


def _quality(results: dict[str, Any]) -> list[str]:
    rows = [
        [
            key,
            f"{q['ndcg@10']:.4f}",
            f"{q['ndcg@10_delta_to_model2vec']:+.4f}",
            f"{q['recall@10']:.4f}",
            f"{q['mrr']:.4f}",
            f"{q['min_cosine_to_model2vec']:.7f}",
        ]
        for key, q in results["quality"].items()
    ]
    return [
        "## Retrieval quality (each query against every document; its relevant document is the one on its line)",
        "",
    ] + table(["system", "nDCG@10", "delta vs model2vec", "Recall@10", "MRR", "min cosine to model2vec"], rows)


def _targets(results: dict[str, Any]) -> list[str]:
    return targets_table("issue 3", results["targets"]) + _imports_floor(results)


def _imports_floor(results: dict[str, Any]) -> list[str]:
    """What the runtime's dependencies alone cost in peak RSS: the floor under the peak RSS target."""
    floor = results.get("peak_rss", {}).get(IMPORTS)
    if not floor or "ratio_to_model2vec" not in floor:
        return []
    return [
        f"Floor under the peak RSS target: a process that reads the documents and imports only numpy, onnxruntime and "
        f"tokenizers (no model, nothing encoded) peaks at {span(floor['summary'], '.1f')} MiB, "
        f"{ratio(floor['ratio_to_model2vec'], IMPORTS)} model2vec's peak.",
        "",
    ]


def _system_line(key: str, description: str, settings: dict[str, Any] | None) -> str:
    shown = {k: v for k, v in (settings or {}).items() if k not in ("graph", "specific_model_path", "class")}
    extra = "; " + ", ".join(f"{k} {v}" for k, v in shown.items()) if shown else ""
    return f"- **{key}**: {description}{extra}"


def render_markdown(results: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    meta = results["meta"]
    lines = [f"# m2v-edge benchmark, {meta['date']} on {meta['machine']['hostname']}", ""]
    if meta["smoke"]:
        lines += ["**Smoke run** (few texts, one round): checks that the benchmark runs; its figures mean nothing.", ""]
    lines += _machine(meta)
    lines += targets_table("issue 16, native core", results["targets_native_core"]) + _targets(results)
    lines += _throughput(results) + _latency(results) + _processes(results) + _bundle(results) + _quality(results)
    title = "## Agreement with model2vec's vectors (float32; rows identical bit for bit)"
    lines += agreement_table(title, results["agreement"])
    lines += render_multilingual(results)
    lines += ["## Systems", ""] + [
        _system_line(key, text, meta["settings"].get(key)) for key, text in meta["systems"].items()
    ]
    lines += [""]
    if meta["unavailable"]:
        lines += ["## Not measured", ""] + [f"- **{key}**: {why}" for key, why in meta["unavailable"].items()] + [""]
    lines += ["## Notes", ""] + [f"- {note}" for note in meta["notes"]] + [""]
    if results.get("charts"):
        lines += ["## Charts", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in results["charts"]] + [""]
    return "\n".join(lines)


def write_report(results: dict[str, Any], markdown: str, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write `<stem>.md` and `<stem>.json` into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    md_path.write_text(markdown, encoding="utf-8")
    json_path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return md_path, json_path
