"""One tuning measurement, run in a fresh process: `python -m m2v_edge.device_profiles._tune_worker JOB.json`.

The job (JSON) names the bundle, the base profile file, the setting and the texts; the result (JSON) is
written to the path in the job's "result" field. Nothing is printed.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (VmHWM; ru_maxrss where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource  # POSIX only; Linux answers from /proc above

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def measure(job: dict) -> dict:
    """Load the bundle with the job's setting and time throughput and single-text latency."""
    from m2v_edge.runtime import EdgeEmbedder

    started = time.perf_counter()
    embedder = EdgeEmbedder(
        job["bundle"],
        variant=job["variant"],
        threads=job["threads"],
        profile=job["profile"],
        token_budget=job["token_budget"],
    )
    load_seconds = time.perf_counter() - started
    texts = list(job["texts"])
    batch = [texts[i % len(texts)] for i in range(max(1, int(job["batch_texts"])))]
    embedder.encode(batch)  # warm-up: first-call allocations and lazy initialisation
    calls, elapsed = 0, 0.0
    started = time.perf_counter()
    while calls == 0 or elapsed < float(job["min_seconds"]):
        embedder.encode(batch)
        calls += 1
        elapsed = time.perf_counter() - started
    latencies = []
    for index in range(max(1, int(job["latency_samples"]))):
        text = texts[index % len(texts)]
        tick = time.perf_counter()
        embedder.encode([text])
        latencies.append(time.perf_counter() - tick)
    return {
        "texts_per_second": calls * len(batch) / elapsed,
        "latency_p50_ms": statistics.median(latencies) * 1000,
        "load_seconds": load_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "variant": embedder.variant,
    }


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    result = measure(job)
    Path(job["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
