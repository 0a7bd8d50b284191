"""The multilingual section of the Markdown report (`bench.multilingual`'s results)."""

from __future__ import annotations

from typing import Any

from bench.sharing import ROLES
from bench.tables import agreement_table, latency_table, ratio, span, table, throughput_table

LANGUAGES_NOTE = "ja, zh_CN, ko, ru, de, fr, es, it, pt_BR and pl"


def _source(figures: dict[str, Any]) -> str:
    source = figures["source"]
    tensors = ", ".join(
        f"`{name}` {'x'.join(map(str, t['shape']))} {t['dtype']}" for name, t in source["tensors"].items()
    )
    export = figures["export"]
    return (
        f"- Source `{figures['model_dir']}`: {tensors}; {source['tokenizer']} tokenizer with {source['pieces']:,} "
        f"pieces. Exported to {', '.join(export['variants'])} in {export['export_s']:.1f} s."
    )


def _settings(figures: dict[str, Any]) -> list[str]:
    lines = []
    for key, values in figures.get("settings", {}).items():
        shown = {k: v for k, v in values.items() if k != "graph"}
        lines.append(f"- {key}: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    return lines


def _memory(figures: dict[str, Any]) -> list[str]:
    peak = figures["peak_rss"]
    texts = next(iter(peak.values()))["texts"] if peak else 0
    rows = [
        [
            key,
            span(entry["summary"], ".1f"),
            ratio(entry.get("ratio_to_model2vec"), key),
            span(entry.get("private_mib"), ".1f"),
        ]
        for key, entry in peak.items()
    ]
    header = ["system", f"peak RSS, {texts} documents in one call", "x model2vec", "private memory (RssAnon) after"]
    rounds = figures["memory_rounds"]
    title = f"Fresh processes on the default profile (`auto`; MiB, median [min-max] over {rounds} rounds):"
    return [title, ""] + table(header, rows)


def _pair(figures: dict[str, Any]) -> list[str]:
    pair = figures.get("zero_2w_pair")
    if not pair:
        return []
    rows = [
        [
            role,
            span(pair[role]["peak_mib"], ".1f"),
            span(pair[role]["private_mib"], ".1f"),
            span(pair[role]["file_mib"], ".1f"),
        ]
        for role in ROLES
    ]
    title = (
        f"{pair['system']} on the `{pair['profile']}` profile, {pair['texts']} documents in one `encode` call, "
        f"two processes alive at once on the same bundle (MiB, {figures['memory_rounds']} pairs):"
    )
    header = ["process", "peak RSS", "private memory (RssAnon)", "file-backed resident (RssFile, shareable)"]
    return [title, ""] + table(header, rows)


def _model(name: str, figures: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", "", _source(figures), *_settings(figures), ""]
    lines += throughput_table("Throughput (texts/s):", figures["throughput"], ("queries", "documents"))
    calls = next(iter(figures["latency"].values()))["calls_per_pass"] if figures["latency"] else 0
    lines += latency_table(
        f"Single-text latency (microseconds; one query per call, {calls} calls per round):", figures["latency"]
    )
    lines += _memory(figures) + _pair(figures)
    lines += agreement_table("Agreement with model2vec's vectors:", figures["agreement"])
    failures = figures.get("unavailable", {}) | figures.get("process_failures", {})
    if failures:
        lines += ["Not measured:", ""] + [f"- **{key}**: {why}" for key, why in failures.items()] + [""]
    return lines


def _large_model_line(section: dict[str, Any], smoke: bool) -> list[str]:
    large = section.get("large_model")
    if not large:
        return []
    note = (
        f"- The 500k Unigram model was built by `build_multilingual_model` with {large['pieces']:,} pieces and "
        f"{large['dim']} dims in {large['build_s']:.1f} s (random float32 table, seed 0, never committed)."
    )
    if smoke:
        note += " Smoke run: a small stand-in, not the 500,353-piece model, so that CI does not build 512 MB."
    return [note]


def render_multilingual(results: dict[str, Any]) -> list[str]:
    """The section as Markdown lines; nothing when the run left it out."""
    section = results.get("multilingual")
    if not section:
        return []
    meta = results["meta"]
    data = section["data"]
    stats = data["stats"]
    lines = [
        "## Multilingual: Debian's translated package descriptions",
        "",
        (
            f"- Data: `{data['path']}` (sha256 {data['sha256'][:12]}), {stats['texts']} queries (mean "
            f"{stats['query_chars_mean']:.0f} chars) and {stats['texts']} documents (mean "
            f"{stats['document_chars_mean']:.0f}, max {stats['document_chars_max']} chars) in {LANGUAGES_NOTE}, "
            "from Debian bookworm's DDTP translations (see bench/data/README.md)"
        ),
        (
            "- Systems as for English, loaded from each model's source folder (m2v-edge from its export); no "
            "fastembed (it runs only the models it lists)"
        ),
        *_large_model_line(section, meta["smoke"]),
        "",
    ]
    for name, figures in section["models"].items():
        lines += _model(name, figures)
    missing = section["unavailable"] | {key: f"failed: {why}" for key, why in section["failed"].items()}
    if missing:
        lines += ["### Not measured", ""] + [f"- **{key}**: {why}" for key, why in missing.items()] + [""]
    return lines
