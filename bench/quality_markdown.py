"""The Markdown form of `bench.quality_report`'s results."""

from __future__ import annotations

from typing import Any

MIB = 2**20


def _summary(entry: dict[str, Any], digits: int = 0) -> str:
    """`median [min-max]` of a `bench.stats.Summary` dict."""
    fmt = f"{{:,.{digits}f}}"
    return f"{fmt.format(entry['median'])} [{fmt.format(entry['min'])}-{fmt.format(entry['max'])}]"


def _header(meta: dict[str, Any]) -> list[str]:
    machine = meta["machine"]
    libs = machine["libraries"]
    data = meta["data"]
    return [
        f"# m2v-edge variants: size and quality, {meta['date']} on {machine['hostname']}",
        "",
        (
            f"- Machine: {machine['cpu_model']} ({machine['architecture']}), {machine['usable_cpus']} usable CPUs, "
            f"{machine['memory_mib']} MiB RAM; load average {meta['load_average_start']} at start, "
            f"{meta['load_average_end']} at end (timings are noisy on a shared machine: compare the ratios)"
        ),
        f"- Python {machine['python']}; m2v-edge {libs['m2v-edge']}, onnxruntime {libs['onnxruntime']}, "
        f"tokenizers {libs['tokenizers']}, numpy {libs['numpy']}; git {str(machine['git_commit'])[:12]}"
        + (" (uncommitted changes)" if machine["git_dirty"] else ""),
        (
            f"- Model: `{meta['model']}`. Data: `{data['path']}` (sha256 {data['sha256'][:12]}), "
            f"{data['texts']} queries "
            f"(mean {data['query_chars_mean']:.0f} chars) against {data['texts']} documents "
            f"(mean {data['document_chars_mean']:.0f} chars); each query's one relevant document is the one on its line"
        ),
        (
            f"- Throughput: {meta['repeat']} rounds, every variant and dim in turn (rotated), one whole-set "
            "`encode` call each; median [min-max] texts/s, ratios to fp32 at the same dim paired by round"
        ),
        "",
    ]


def _targets(rows: list[dict[str, Any]]) -> list[str]:
    passed = sum(row["passed"] for row in rows)
    out = [f"## Targets (issue 7): {passed} of {len(rows)} met", "", "| target | required | measured | result |"]
    out.append("|---|---|---|---|")
    for row in rows:
        value = row["measured"]
        shown = f"{value:.2%}" if "%" in row["required"] else f"{value:+.4f}"
        out.append(f"| {row['target']} | {row['required']} | {shown} | {'PASS' if row['passed'] else 'FAIL'} |")
    return [*out, ""]


def _main_table(results: dict[str, Any]) -> list[str]:
    table_mib = results["source_table_float32_bytes"] / MIB
    out = [
        "## Variants at 256, 128 and 64 dimensions",
        "",
        (
            f"Sizes are relative to the float32 source table ({table_mib:.2f} MiB). 'Bundle' is what a device "
            "needs for one variant: graph, tokenizer, manifest, licence. Cosines compare each vector with the "
            "fp32 variant's at the same dim (all queries and documents)."
        ),
        "",
        (
            "| dim | variant | graph MiB | graph / fp32 table | bundle MiB | bundle / fp32 table | nDCG@10 | vs fp32 "
            "| Recall@10 | mean cos to fp32 | min cos to fp32 | queries/s | x fp32 | documents/s | x fp32 |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    speed = results["throughput"]
    for dim, per in results["dims"].items():
        for variant, f in per.items():
            t = speed[f"{variant}@{dim}"]
            out.append(
                f"| {dim} | {variant} | {f['graph_bytes'] / MIB:.2f} | {f['graph_to_fp32_table']:.1%} "
                f"| {f['deploy_bytes'] / MIB:.2f} | {f['deploy_to_fp32_table']:.1%} | {f['ndcg@10']:.4f} "
                f"| {f['ndcg@10'] - per['fp32']['ndcg@10']:+.4f} | {f['recall@10']:.4f} "
                f"| {f['mean_cosine_to_fp32']:.6f} | {f['min_cosine_to_fp32']:.6f} "
                f"| {_summary(t['queries']['summary'])} | {_summary(t['queries']['ratio_to_fp32'], 2)} "
                f"| {_summary(t['documents']['summary'])} | {_summary(t['documents']['ratio_to_fp32'], 2)} |"
            )
    settings = speed["settings"]
    out += [
        "",
        (
            f"Runtime settings: profile {settings['profile']}, {settings['intra_op_threads']} onnxruntime threads, "
            f"token budget {settings['token_budget']}."
        ),
        "",
    ]
    return out


def _sweep(results: dict[str, Any]) -> list[str]:
    out = [
        f"## int4 block size (values per float16 scale) at {max(results['dims'])} dims",
        "",
        (
            "The same quantisation at each block size, rebuilt with the exporter's functions and run by the "
            "runtime. The shipped size is `m2v_edge.export.quantize.INT4_BLOCK_SIZE`."
        ),
        "",
        (
            "| block | graph MiB | graph / fp32 table | bundle / fp32 table | nDCG@10 | Recall@10 | mean cos to fp32 "
            "| min cos to fp32 |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for block, f in results["int4_block_sweep"].items():
        out.append(
            f"| {block} | {f['graph_bytes'] / MIB:.2f} | {f['graph_to_fp32_table']:.2%} "
            f"| {f['deploy_to_fp32_table']:.2%} | {f['ndcg@10']:.4f} | {f['recall@10']:.4f} "
            f"| {f['mean_cosine_to_fp32']:.6f} | {f['min_cosine_to_fp32']:.6f} |"
        )
    return [*out, ""]


def _designs(designs: dict[str, Any]) -> list[str]:
    out = ["## int4 graph designs (graph only, same batches)", ""]
    if "error" in designs:
        return [*out, f"Not measured: {designs['error']}", ""]
    out += [
        (
            f"onnxruntime {designs['onnxruntime']}, {designs['threads']} thread; seconds per whole set as median "
            "[min-max], ratio to the fp32 graph paired by round. The two int4 designs decode the same codes: largest "
            f"difference between their outputs {designs['max_abs_difference_between_int4_designs']:.1e}."
        ),
        "",
        "| design | queries s | x fp32 graph | documents s | x fp32 graph | one query, us | x fp32 graph |",
        "|---|---|---|---|---|---|---|",
    ]
    sets, single = designs["sets"], designs["single_text_us"]
    for design in single:
        q, d, s = sets["queries"][design], sets["documents"][design], single[design]
        out.append(
            f"| {design} | {_summary(q['summary'], 3)} | {_summary(q['ratio_to_fp32_graph'], 2)} "
            f"| {_summary(d['summary'], 3)} | {_summary(d['ratio_to_fp32_graph'], 2)} "
            f"| {_summary(s['summary'], 1)} | {_summary(s['ratio_to_fp32_graph'], 2)} |"
        )
    out += [
        "",
        (
            "Only the standard-operator graph is shipped: `GatherBlockQuantized` is not a registered operator in "
            "onnxruntime 1.17.3 (loading fails: 'com.microsoft:GatherBlockQuantized(-1) is not a registered "
            "function/op'), and bundles must load on onnxruntime >= 1.17; the shipped int4 graph loads there and "
            "gives the same vectors as on the onnxruntime above."
        ),
        "",
    ]
    return out


def render(results: dict[str, Any]) -> str:
    """The whole report."""
    lines = [
        *_header(results["meta"]),
        *_targets(results["targets"]),
        *_main_table(results),
        *_sweep(results),
        *_designs(results["int4_designs"]),
        f"Chart: `{results['chart']}` (bundle size against nDCG@10).",
        "",
    ]
    return "\n".join(lines)
