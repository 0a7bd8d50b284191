"""`make demo` (scripts/demo.py) end to end, on fewer documents: export, ingest, sync into Milvus Lite, search."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_demo_runs_offline_into_milvus_lite(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--out", str(out), "--docs", "60", "-k", "2"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    assert re.search(r"ingested 60 documents from 60 lines into \S+kiosk\.outbox", text), text
    assert re.search(r"synced 60 rows and 0 deletions to \S+kiosk-milvus\.db collection debian", text), text
    assert re.search(r"^pending\s+0$", text, re.MULTILINE) and re.search(r"^synced\s+60$", text, re.MULTILINE), text
    hits = re.findall(r"^  [12]\. (0\.\d{4})  \S+  ", text, re.MULTILINE)
    assert len(hits) == 6, text  # two hits for each of the three queries, each with a cosine score
    assert (out / "bundle" / "m2v_edge.json").is_file() and (out / "kiosk.outbox").is_file()
