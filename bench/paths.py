"""Where the benchmarks find the repository, the shipped model and the Debian corpora (standard library only)."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEBIAN_DATA = REPO / "bench" / "data" / "debian-descriptions-public.jsonl"
"""The 8,000 English query/document pairs."""
POTION_MODEL = REPO / "models" / "potion-base-8M"
"""The shipped Model2Vec source folder."""
