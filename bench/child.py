"""A fresh process that imports one system, loads the model and encodes: for cold-start and memory figures.

Run as a script by `bench.coldstart` and `bench.sharing`, never imported by the benchmark itself::

    python bench/child.py MODE SYSTEM SPEC_JSON

MODE is `coldstart` (encode one text), `rss` (encode the documents of the corpus in one call) or `hold` (as `rss`,
then stay alive until stdin closes, so that a second process can map the same files meanwhile). SYSTEM is
`m2v-edge <variant>`, `model2vec`, `laghu` (or `laghu, ...` on the folder SPEC's `model_dirs` names for it),
`fastembed`, `tokenizers floor` or `runtime imports` (import only, encode nothing). Until the system's own import
only the standard library is loaded. One JSON line goes to stdout: `time.monotonic()` stamps (system-wide on Linux,
so comparable with the parent's spawn stamp), the peak RSS (`VmHWM`) before the import and at the end, and the
private memory (`RssAnon`) at the end.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

STARTED = time.monotonic()
"""Interpreter started and the few standard modules above imported: nothing of any system yet."""

# Running as a script puts bench/ first on sys.path; its module names must not shadow anything the systems import.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)


def _status_kib() -> dict[str, int]:
    """The `kB` fields of /proc/self/status (`VmHWM`, `VmRSS`, `RssAnon`, `RssFile`, ...); empty elsewhere."""
    fields: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                name, _, value = line.partition(":")
                parts = value.split()
                if len(parts) == 2 and parts[1] == "kB":
                    fields[name] = int(parts[0])
    except OSError:
        pass
    return fields


def _max_rss_kib() -> int:
    """Peak resident set size of this process so far, in KiB.

    `VmHWM` from /proc/self/status, not `ru_maxrss`: Linux carries the parent's high-water mark across fork and
    exec into `ru_maxrss` (and into the parent's RUSAGE_CHILDREN), so a child of a large benchmark process would
    report the parent's size. `VmHWM` belongs to the address space that exec created. Elsewhere: `ru_maxrss`.
    """
    return _status_kib().get("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _load(system: str, spec: dict[str, Any]) -> tuple[float, Callable[[list[str]], Any]]:
    """Import and load `system`; return the stamp after the import and the encode function."""
    if system.startswith("m2v-edge "):
        from m2v_edge.runtime import EdgeEmbedder

        imported = time.monotonic()
        variant = system.split(" ", 1)[1]
        profile = spec.get("profile") or "auto"
        embedder = EdgeEmbedder(spec["bundle"], variant=variant, threads=spec["threads"], profile=profile)
        return imported, embedder.encode
    if system == "model2vec":
        from model2vec import StaticModel

        imported = time.monotonic()
        return imported, StaticModel.from_pretrained(spec["model_dir"]).encode
    if system.startswith("laghu"):  # `laghu`, or another copy of the model (see `model_dirs`)
        from laghu import load

        imported = time.monotonic()
        model_dir = spec.get("model_dirs", {}).get(system, spec["model_dir"])
        return imported, load(model_dir, fallback=False).encode
    if system == "fastembed":
        from fastembed import TextEmbedding

        imported = time.monotonic()
        embedding = TextEmbedding(spec["fastembed_model"], specific_model_path=spec["model_dir"])
        return imported, lambda texts: list(embedding.embed(texts))
    if system == "tokenizers floor":
        # What m2v-edge's runtime cannot avoid importing, and tokenizing without any pooling.
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
        from tokenizers import Tokenizer

        imported = time.monotonic()
        tokenizer = Tokenizer.from_file(os.path.join(spec["bundle"], "tokenizer.json"))
        tokenizer.no_padding()
        if spec["max_length"] is not None:
            tokenizer.enable_truncation(spec["max_length"])
        limit = spec["char_limit"]

        def tokenize(texts: list[str]) -> Any:
            cut = texts if limit is None else [text[:limit] for text in texts]
            return tokenizer.encode_batch_fast(cut, add_special_tokens=False)

        return imported, tokenize
    if system == "runtime imports":
        # The floor of any runtime on m2v-edge's dependencies: their imports, no model, nothing encoded.
        import numpy  # noqa: F401
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401

        return time.monotonic(), lambda texts: []
    raise SystemExit(f"unknown system {system!r}")


def _documents(spec: dict[str, Any]) -> list[str]:
    documents: list[str] = []
    with open(spec["data"], encoding="utf-8") as handle:
        for line in handle:
            if len(documents) >= spec["limit"]:
                break
            if line.strip():
                documents.append(json.loads(line)["document"])
    return documents


def main() -> None:
    mode, system, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if mode not in ("coldstart", "rss", "hold"):
        raise SystemExit(f"unknown mode {mode!r}")
    texts = [spec["text"]] if mode == "coldstart" else _documents(spec)
    baseline_kib = _max_rss_kib()
    before_import = time.monotonic()
    imported, encode = _load(system, spec)
    loaded = time.monotonic()
    result = encode(texts)
    encoded = time.monotonic()
    count = len(result)
    status = _status_kib()
    report = {
        "mode": mode,
        "system": system,
        "started": STARTED,
        "before_import": before_import,
        "imported": imported,
        "loaded": loaded,
        "encoded": encoded,
        "texts": len(texts),
        "outputs": count,
        "baseline_max_rss_kib": baseline_kib,
        "max_rss_kib": _max_rss_kib(),
        "rss_anon_kib": status.get("RssAnon"),
        "rss_file_kib": status.get("RssFile"),
        "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM"),
    }
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    if mode == "hold":
        sys.stdin.read()  # alive, with everything mapped, until the parent closes our stdin


if __name__ == "__main__":
    main()
