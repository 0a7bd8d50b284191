"""Two processes on one bundle at the same time: what the second one costs when the first already maps the files.

Issue 16's memory target is measured this way: process A loads the bundle and encodes every document in one
`encode` call, then stays alive; process B does the same while A still runs. Pages mapped from the bundle are shared
between them, so B's private memory (`RssAnon`) is what one more process on the device costs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import IO, Any

from bench.coldstart import CHILD, TIMEOUT_S, ChildError
from bench.stats import Progress, summarize

ROLES = ("first process", "second process")


Running = tuple[subprocess.Popen[str], IO[str]]
"""A child alive in `hold` mode, and the file its stderr goes to (a file, not a pipe: a pipe could fill and block
the child while the parent waits on its stdout)."""


def _start(system: str, spec: Mapping[str, Any], env: Mapping[str, str]) -> tuple[Running, dict[str, Any]]:
    """Start a `hold` child and wait for its report; it stays alive until its stdin is closed."""
    argv = [sys.executable, str(CHILD), "hold", system, json.dumps(dict(spec))]
    stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by _stop
    child = subprocess.Popen(
        argv, env=dict(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    assert child.stdout is not None
    line = child.stdout.readline()  # the child writes its one report line, then blocks on stdin
    if not line.startswith("{"):
        child.kill()
        child.communicate()
        stderr.seek(0)
        lines = [text.strip() for text in stderr.read().splitlines() if text.strip()]
        stderr.close()
        raise ChildError(
            f"{system} (hold) exited with {child.returncode}: {lines[-1][:500] if lines else '(no stderr)'}"
        )
    return (child, stderr), json.loads(line)


def _stop(running: Running) -> None:
    """Close the child's stdin (its signal to exit) and wait for it; killed if it does not exit in time."""
    child, stderr = running
    try:
        child.communicate(input="", timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
    stderr.close()


def measure_pair(
    system: str, spec: Mapping[str, Any], env: Mapping[str, str], repeat: int, progress: Progress = None
) -> dict[str, Any]:
    """Peak RSS, private memory (`RssAnon`) and file-backed resident memory (`RssFile`) of the first and the second
    of two processes alive at once on the same bundle, in MiB, over `repeat` pairs (after one untimed pair that
    warms the page cache)."""
    samples: dict[str, dict[str, list[float]]] = {role: {"peak": [], "private": [], "file": []} for role in ROLES}
    texts = 0
    for round_index in range(-1, repeat):
        running: list[Running] = []
        try:
            for role in ROLES:
                started, report = _start(system, spec, env)
                running.append(started)
                if round_index >= 0:
                    samples[role]["peak"].append(report["max_rss_kib"] / 1024)
                    samples[role]["private"].append((report["rss_anon_kib"] or 0) / 1024)
                    samples[role]["file"].append((report["rss_file_kib"] or 0) / 1024)
                texts = report["texts"]
        finally:
            for started in running:
                _stop(started)
        if progress is not None and round_index >= 0:
            progress(f"two processes on one bundle, round {round_index + 1}/{repeat}")
    return {
        "system": system,
        "profile": spec.get("profile"),
        "texts": texts,
        **{
            role: {f"{name}_mib": summarize(values).as_dict() for name, values in figures.items()}
            for role, figures in samples.items()
        },
    }
