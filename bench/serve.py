"""`python -m bench.serve`: `m2v-edge serve` under load, against `EdgeEmbedder` called in-process (issue 18).

A real server (potion-base-8M int8, its log at INFO as in production) takes `POST /v1/embeddings` from 1, 4, 16 and
64 wrk clients, with one text per request (a Debian synopsis) and with 32. In the same round, as many threads call
`EdgeEmbedder.encode` in this process with the same texts (`encode(str)` for one text, `encode(list)` for 32).
Also measured: the server handing each request to its encoding thread alone (`--no-grouping`) instead of grouping
the requests that arrive together (micro-batching), and TEI's `/embed`. Rounds alternate; the figures are medians
over rounds, and the ratios medians of the ratios paired by round. Target: at 16 single-text clients, the server
delivers >= 50% of the in-process single-text throughput.

Writes `bench/results/<date>-<host>-serve.{json,md}` and prints the table. Needs wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import socket
import statistics
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.corpus import load_corpus
from bench.machine import load_average, machine_info
from bench.serve_load import Figures, Server, in_process, require_wrk, wrk
from bench.paths import DEBIAN_DATA, POTION_MODEL, REPO

CLIENTS = (1, 4, 16, 64)
SIZES = (1, 32)
TARGET = 0.5
TARGET_CLIENTS = 16
REQUESTS = 2000
"""Distinct request bodies per request size."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle folder with int8 (default: export potion-base-8M)")
    parser.add_argument("--seconds", type=int, default=4, help="seconds per measurement (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, configurations alternating (default 3)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="where the report goes")
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 s at 1 and 16 clients; writes nothing")
    args = parser.parse_args(argv)
    require_wrk()
    clients = (1, TARGET_CLIENTS) if args.smoke else CLIENTS
    rounds, seconds = (1, 1) if args.smoke else (args.rounds, args.seconds)

    from m2v_edge.runtime import EdgeEmbedder

    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.bundle or _export(Path(scratch))
        embedder = EdgeEmbedder(bundle, variant="int8")
        queries = load_corpus(DEBIAN_DATA).queries
        calls = {1: queries[:REQUESTS], 32: [[queries[(i * 32 + j) % len(queries)] for j in range(32)]
                                             for i in range(REQUESTS)]}
        bodies = {size: [json.dumps({"input": call, "model": "potion-base-8M"}).encode() for call in calls[size]]
                  for size in SIZES}
        tei_bodies = [json.dumps({"inputs": text}).encode() for text in calls[1]]
        serve = ("m2v_edge.cli", "serve", str(bundle), "--variant", "int8", "--port", "0")
        grouped, alone, floor = Server(*serve), Server(*serve, "--no-grouping"), Server("bench.serve_floor")
        try:
            for server in (grouped, alone, floor):  # warm-up: first requests, the piece cache
                wrk(server.url, "/v1/embeddings", bodies[1], 1, 4, 1)
            runs: dict[str, list[dict[str, Any]]] = {}
            for _ in range(rounds):
                for size in SIZES:
                    for count in clients:
                        served = wrk(grouped.url, "/v1/embeddings", bodies[size], size, count, seconds)
                        local = in_process(embedder, calls[size], count, seconds)
                        runs.setdefault(f"{size}x{count}", []).append({"server": served, "in_process": local})
                for count in clients:
                    runs.setdefault(f"alone-{count}", []).append(
                        {"server": wrk(alone.url, "/v1/embeddings", bodies[1], 1, count, seconds)})
                runs.setdefault(f"tei-{TARGET_CLIENTS}", []).append(
                    {"server": wrk(grouped.url, "/embed", tei_bodies, 1, TARGET_CLIENTS, seconds)})
                runs.setdefault(f"floor-{TARGET_CLIENTS}", []).append(
                    {"server": wrk(floor.url, "/v1/embeddings", bodies[1], 1, TARGET_CLIENTS, seconds)})
        finally:
            for server in (grouped, alone, floor):
                server.stop()
    results = _summarise(runs, clients, embedder)
    report = _markdown(results, clients)
    print(report)
    if not args.smoke:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = args.out / f"{datetime.date.today().isoformat()}-{socket.gethostname()}-serve"
        stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        stem.with_suffix(".md").write_text(report, encoding="utf-8")
        print(f"wrote {stem}.json and .md")
    return 0


def _export(folder: Path) -> Path:
    from m2v_edge.export import export_model

    return export_model(POTION_MODEL, folder / "bundle", variants=("int8",))


def _median(figures: list[Figures]) -> dict[str, float]:
    return {name: statistics.median(getattr(f, name) for f in figures) for name in asdict(figures[0])}


def _ratio(runs: list[dict[str, Any]], key: str, other: list[dict[str, Any]] | None = None) -> float:
    """Median over rounds of server texts/s over `key`'s texts/s (in the same round's `other` runs, when given)."""
    pairs = zip(runs, other or runs)
    return statistics.median(a["server"].texts_per_s / b[key].texts_per_s for a, b in pairs)


def _summarise(runs: dict[str, list[dict[str, Any]]], clients: tuple[int, ...], embedder: Any) -> dict[str, Any]:
    rows = []
    for size in SIZES:
        for count in clients:
            measured = runs[f"{size}x{count}"]
            rows.append({
                "texts_per_request": size, "clients": count,
                "server": _median([m["server"] for m in measured]),
                "in_process": _median([m["in_process"] for m in measured]),
                "server_over_in_process": _ratio(measured, "in_process"),
            })
    grouping = [{
        "clients": count,
        "grouped": _median([m["server"] for m in runs[f"1x{count}"]]),
        "alone": _median([m["server"] for m in runs[f"alone-{count}"]]),
        "grouped_over_alone": _ratio(runs[f"1x{count}"], "server", runs[f"alone-{count}"]),
    } for count in clients]
    target = runs[f"1x{TARGET_CLIENTS}"]
    single_thread = runs["1x1"]
    return {
        "meta": {"date": datetime.date.today().isoformat(), "machine": machine_info(REPO), "load_after": load_average(),
                 "variant": embedder.variant, "profile": embedder.profile.name, "tokenizing": embedder.tokenizing},
        "rows": rows,
        "grouping": grouping,
        "tei_embed_16": _median([m["server"] for m in runs[f"tei-{TARGET_CLIENTS}"]]),
        "http_floor_16": _median([m["server"] for m in runs[f"floor-{TARGET_CLIENTS}"]]),
        "target": {
            "server_over_in_process_16_threads": _ratio(target, "in_process"),
            "server_over_in_process_1_thread": _ratio(target, "in_process", single_thread),
            "server_over_http_floor": _ratio(target, "server", runs[f"floor-{TARGET_CLIENTS}"]),
            "http_floor_over_in_process_16_threads": _ratio(runs[f"floor-{TARGET_CLIENTS}"], "in_process", target),
            "target": TARGET,
        },
    }


def _markdown(results: dict[str, Any], clients: tuple[int, ...]) -> str:
    meta = results["meta"]
    machine = meta["machine"]
    lines = [
        f"# m2v-edge serve under load, {meta['date']}",
        "",
        f"{machine['cpu_model']}, {machine['usable_cpus']} usable CPUs, load average after the run "
        f"{meta['load_after']} (the machine is shared: figures move by 2x between runs; compare within a row). "
        f"potion-base-8M {meta['variant']}, profile {meta['profile']}, tokenizing {meta['tokenizing']}. "
        "`POST /v1/embeddings`, float JSON; wrk clients in a closed loop; in-process: as many threads calling "
        "`EdgeEmbedder.encode` in one process. Medians over rounds.",
        "",
        "| texts/request | clients | server req/s | server texts/s | server p50 / p99 ms | in-process calls/s | "
        "in-process texts/s | in-process p50 / p99 ms | server / in-process |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        server, local = row["server"], row["in_process"]
        lines.append(
            f"| {row['texts_per_request']} | {row['clients']} | {server['requests_per_s']:,.0f} | "
            f"{server['texts_per_s']:,.0f} | {server['p50_ms']:.2f} / {server['p99_ms']:.2f} | "
            f"{local['requests_per_s']:,.0f} | {local['texts_per_s']:,.0f} | "
            f"{local['p50_ms']:.3f} / {local['p99_ms']:.3f} | {row['server_over_in_process']:.2f}x |"
        )
    lines += ["", "Micro-batching: requests that arrive together handed to the encoding thread in one go (grouped), "
              "or one by one (`--no-grouping`); one text per request.", "",
              "| clients | grouped req/s | one by one req/s | grouped / one by one |", "|---:|---:|---:|---:|"]
    for row in results["grouping"]:
        lines.append(f"| {row['clients']} | {row['grouped']['requests_per_s']:,.0f} | "
                     f"{row['alone']['requests_per_s']:,.0f} | {row['grouped_over_alone']:.2f}x |")
    tei, floor = results["tei_embed_16"], results["http_floor_16"]
    target = results["target"]
    met = "met" if target["server_over_in_process_16_threads"] >= TARGET else "missed"
    lines += [
        "",
        f"TEI `POST /embed`, 16 clients, one text: {tei['requests_per_s']:,.0f} req/s, p50 {tei['p50_ms']:.2f} ms.",
        "",
        f"The HTTP stack's ceiling (`bench.serve_floor`: uvicorn as `serve` runs it, an app that does no work and "
        f"replies with a fixed vector), 16 clients: {floor['requests_per_s']:,.0f} req/s, "
        f"{target['http_floor_over_in_process_16_threads']:.2f}x the in-process throughput; `serve` reaches "
        f"{target['server_over_http_floor']:.2f}x of it.",
        "",
        f"Target (16 single-text clients >= {TARGET:.0%} of in-process single-text throughput): "
        f"{target['server_over_in_process_16_threads']:.2f}x of 16 in-process threads, "
        f"{target['server_over_in_process_1_thread']:.2f}x of one in-process thread: {met}.",
        "",
    ]
    if any(row["server"]["errors"] for row in results["rows"]):
        lines.append("Some requests failed (non-2xx or socket errors): see the JSON.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
