"""The Markdown report (ASCII only, so any terminal prints it) and the JSON written beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.systems import IMPORTS, REFERENCE

MIB = 1024 * 1024


def _span(summary: dict[str, float] | None, fmt: str, scale: float = 1.0) -> str:
    """`median [min-max]`, or just the median when there was one sample."""
    if not summary:
        return "-"
    median, low, high = (summary[k] * scale for k in ("median", "min", "max"))
    if summary.get("n", 1) <= 1 or low == high:
        return format(median, fmt)
    return f"{format(median, fmt)} [{format(low, fmt)}-{format(high, fmt)}]"


def _ratio(summary: dict[str, float] | None, key: str) -> str:
    return "1 (reference)" if key == REFERENCE else (_span(summary, ".2f") + "x" if summary else "-")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


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
            "figures are median [min-max] over rounds; ratios to model2vec are paired by round, then summarised"
        ),
        f"- Environment: {', '.join(f'{k}={v}' for k, v in m['environment'].items() if v is not None) or 'none set'}",
        "",
    ]


def _throughput(results: dict[str, Any]) -> list[str]:
    sets = results["throughput"]
    rows = []
    for key in sets["queries"]:
        row = [key]
        for name in ("queries", "documents"):
            entry = sets[name][key]
            row += [_span(entry["summary"], ",.0f"), _ratio(entry["ratio_to_model2vec"], key)]
        rows.append(row)
    return ["## Throughput (texts/s)", ""] + _table(
        ["system", "queries/s", "x model2vec", "documents/s", "x model2vec"], rows
    )


def _latency(results: dict[str, Any]) -> list[str]:
    lat = results["latency"]
    calls = next(iter(lat.values()))["calls_per_pass"] if lat else 0
    rows = [
        [
            key,
            _span(e["p50_us"], ".1f"),
            _span(e["p99_us"], ".1f"),
            _ratio(e["p50_ratio_to_model2vec"], key),
            _ratio(e["p99_ratio_to_model2vec"], key),
        ]
        for key, e in lat.items()
    ]
    title = f"## Single-text latency (microseconds; one query per call, {calls} calls per round)"
    return [title, ""] + _table(["system", "p50", "p99", "p50 x model2vec", "p99 x model2vec"], rows)


def _processes(results: dict[str, Any]) -> list[str]:
    cold, rss = results["coldstart"], results["peak_rss"]
    parts = ("interpreter_s", "import_s", "load_s", "first_vector_s")
    rows = []
    for key in dict.fromkeys([*cold, *rss]):
        c, r = cold.get(key), rss.get(key)
        rows.append(
            [
                key,
                _span(c["summary"], ".3f") if c else "-",
                _ratio(c.get("ratio_to_model2vec"), key) if c else "-",
                " / ".join(f"{c['parts'][p]['median']:.3f}" for p in parts) if c else "-",
                _span(r["summary"], ".1f") if r else "-",
                _ratio(r.get("ratio_to_model2vec"), key) if r else "-",
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
        "peak RSS, one text",
        "RSS before import",
    ]
    title = "## Cold start (s, spawn to first vector) and peak RSS (MiB) of fresh processes"
    return [title, "", *_table(header, rows)]


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
        + _table(
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
                f"{_span(export['summary'], '.2f')} s "
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
    ] + _table(["system", "nDCG@10", "delta vs model2vec", "Recall@10", "MRR", "min cosine to model2vec"], rows)


def _targets(results: dict[str, Any]) -> list[str]:
    rows = []
    for t in results["targets"]:
        if t["measured"] is None:
            measured, mark = "not measured", "n/a"
        elif t["unit"] == "x":
            measured = _span({"median": t["measured"], "min": t["min"], "max": t["max"], "n": 2}, ".2f") + "x"
            mark = "PASS" if t["passed"] else "FAIL"
        else:
            measured, mark = f"{t['measured']:+.4f}", "PASS" if t["passed"] else "FAIL"
        rows.append([t["target"], t["required"], measured, mark])
    passed = sum(1 for t in results["targets"] if t["passed"])
    return (
        [f"## Targets (issue 3): {passed} of {len(results['targets'])} met", ""]
        + _table(["target", "required", "measured (median [min-max] over rounds)", "result"], rows)
        + _imports_floor(results)
    )


def _imports_floor(results: dict[str, Any]) -> list[str]:
    """What the runtime's dependencies alone cost in peak RSS: the floor under the peak RSS target."""
    floor = results.get("peak_rss", {}).get(IMPORTS)
    if not floor or "ratio_to_model2vec" not in floor:
        return []
    return [
        f"Floor under the peak RSS target: a process that reads the documents and imports only numpy, onnxruntime and "
        f"tokenizers (no model, nothing encoded) peaks at {_span(floor['summary'], '.1f')} MiB, "
        f"{_ratio(floor['ratio_to_model2vec'], IMPORTS)} model2vec's peak.",
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
    lines += _machine(meta) + _targets(results) + _throughput(results) + _latency(results) + _processes(results)
    lines += _bundle(results) + _quality(results)
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
