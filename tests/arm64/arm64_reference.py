"""The x86-64 side of the aarch64 parity check, and what both sides share.

`make test-arm64` (scripts/arm64/run_tests.sh) first runs, on the x86-64 host::

    python tests/arm64/arm64_reference.py prepare WORK

which exports the shipped potion-base-8M into `WORK/bundle` (fp32, fp16, int8; with tokenizer.m2v where this host's
m2v-edge has its native core) and encodes the parity texts with each variant into `WORK/reference.<variant>.npy`,
with `WORK/reference.json` describing them (the tokenizing path taken included). The emulated aarch64
pytest then loads the same bundle bytes and compares its vectors with these (tests/arm64/test_aarch64_parity.py).

Only the standard library, numpy and m2v_edge are imported, so this module loads on both sides.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
POTION_SOURCE = REPO / "models" / "potion-base-8M"
DEBIAN_TEXTS = REPO / "bench" / "data" / "debian-descriptions-public.jsonl"
VARIANTS = ("fp32", "fp16", "int8")
N_TEXTS = 500
REFERENCE_FILE = "reference.json"
BUNDLE_DIR = "bundle"
TIMING_REPEATS = 3


def parity_texts(path: Path = DEBIAN_TEXTS, n: int = N_TEXTS) -> list[str]:
    """`n` Debian texts: the synopsis and the long description of `n / 2` rows spread evenly over the file."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    pairs = n // 2
    step = len(rows) // pairs
    chosen = rows[::step][:pairs]
    texts = [row["query"] for row in chosen] + [row["document"] for row in chosen]
    assert len(texts) == n, (len(texts), n)
    return texts


def texts_digest(texts: list[str]) -> str:
    """sha256 of the texts (each UTF-8 encoded, NUL-separated): both sides must compare the same inputs."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def reference_path(work: Path, variant: str) -> Path:
    return work / f"reference.{variant}.npy"


def bundle_digests(bundle: Path) -> dict[str, str]:
    """sha256 of every file of a bundle folder, manifest included."""
    from m2v_edge.bundle import sha256_file

    return {path.name: sha256_file(path) for path in sorted(bundle.iterdir()) if path.is_file()}


def timed_encode(embedder, texts: list[str], repeats: int = TIMING_REPEATS) -> tuple[np.ndarray, float]:
    """The vectors and the best wall time of `repeats` encodes of all `texts` (after a warm-up call)."""
    embedder.encode(texts[:8])
    best = float("inf")
    out = None
    for _ in range(repeats):
        start = time.perf_counter()
        out = embedder.encode(texts)
        best = min(best, time.perf_counter() - start)
    assert out is not None
    return out, best


def prepare(work: Path) -> dict:
    """Export the bundle and write the x86-64 reference vectors into `work`; return the description written."""
    import onnxruntime

    from m2v_edge import __version__
    from m2v_edge.export import export_model
    from m2v_edge.runtime import EdgeEmbedder

    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    bundle = export_model(POTION_SOURCE, work / BUNDLE_DIR, variants=VARIANTS, overwrite=True)
    export_seconds = time.perf_counter() - started
    texts = parity_texts()
    variants = {}
    for variant in VARIANTS:
        embedder = EdgeEmbedder(bundle, variant=variant)
        vectors, seconds = timed_encode(embedder, texts)
        assert vectors.dtype == np.float32 and vectors.shape == (len(texts), embedder.dim)
        assert np.isfinite(vectors).all()
        np.save(reference_path(work, variant), vectors)
        variants[variant] = {
            "profile": embedder.profile.name, "tokenizing": embedder.tokenizing, "seconds": seconds,
            "texts_per_s": len(texts) / seconds,
        }
    description = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "m2v_edge": __version__,
        "n_texts": len(texts),
        "texts_sha256": texts_digest(texts),
        "export_seconds": export_seconds,
        "bundle_files": bundle_digests(bundle),
        "variants": variants,
    }
    (work / REFERENCE_FILE).write_text(json.dumps(description, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return description


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="export the bundle and write the x86-64 reference vectors")
    prep.add_argument("work", type=Path, help="folder to write the bundle and the reference into")
    args = parser.parse_args(argv)
    description = prepare(args.work)
    for variant, facts in description["variants"].items():
        print(
            f"{description['machine']} reference {variant}: {description['n_texts']} texts, "
            f"{facts['texts_per_s']:.0f} texts/s (profile {facts['profile']}, tokenizing {facts['tokenizing']})"
        )
    print(f"bundle exported in {description['export_seconds']:.1f}s to {args.work / BUNDLE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
