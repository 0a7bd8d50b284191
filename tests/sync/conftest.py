"""Fixtures for the sync tests: real Milvus servers, real outboxes, the real `m2v-edge` command in subprocesses.

Servers are session-scoped and started lazily (a run that needs no Milvus standalone never starts one); tests
that kill a server restart it before they end. Every server runs on 127.0.0.1 in its own process group and is
SIGKILLed as a group at the end, so no process is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.sync import MilvusCollection, Outbox, Record, ingest, parse_target

from .servers import LiteServer, StandaloneServer

REPO = Path(__file__).resolve().parents[2]
DEBIAN = REPO / "bench" / "data" / "debian-descriptions-public.jsonl"
VARIANT = "fp32"
"""The bundle variant every test embeds with (fixed, so that fingerprints do not depend on the device)."""
N_DOCS = 5000
KIOSK = "kiosk-test"
"""The kiosk id of the template outbox."""
CLI = [sys.executable, "-m", "m2v_edge.cli"]
FIGURES: list[str] = []
"""Measured figures (throughput, fault-test counts), printed at the end of the run."""


def record_figure(line: str) -> None:
    """Keep a measured figure for the end-of-run summary."""
    FIGURES.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("m2v-edge sync figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


# ----------------------------------------------------------------------------- data


@pytest.fixture(scope="session")
def debian_records() -> list[Record]:
    """The 8,000 public Debian packages as records: id = package, text = long description, synopsis in metadata."""
    rows = [json.loads(line) for line in DEBIAN.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Record(row["package"], row["document"], {"synopsis": row["query"], "n": i}) for i, row in enumerate(rows)]


@pytest.fixture(scope="session")
def records_file(tmp_path_factory: pytest.TempPathFactory, debian_records: list[Record]) -> Path:
    """The first 5,000 records as an ingest JSONL file."""
    path = tmp_path_factory.mktemp("records") / "docs.jsonl"
    write_jsonl(path, debian_records[:N_DOCS])
    return path


def write_jsonl(path: Path, records: list[Record]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({"id": record.id, "text": record.text, "metadata": record.metadata}) + "\n")
    return path


@pytest.fixture(scope="session")
def embedder(potion_bundle: Path):  # noqa: ANN201 - EdgeEmbedder
    from m2v_edge.runtime import EdgeEmbedder

    return EdgeEmbedder(potion_bundle, variant=VARIANT)


@pytest.fixture(scope="session")
def outbox_template(tmp_path_factory: pytest.TempPathFactory, embedder, debian_records: list[Record]) -> Path:
    """An outbox holding the first 5,000 records, all pending (copy it; do not change it)."""
    path = tmp_path_factory.mktemp("outbox-template") / "outbox.db"
    with Outbox.create(path, fingerprint=embedder.fingerprint, dim=embedder.dim, kiosk_id=KIOSK) as outbox:
        ingest(outbox, embedder, debian_records[:N_DOCS], batch_size=1000)
    return path


@pytest.fixture
def outbox5000(tmp_path: Path, outbox_template: Path) -> Path:
    """A fresh copy of the 5,000-document outbox."""
    path = tmp_path / "outbox.db"
    shutil.copy2(outbox_template, path)
    return path


# ----------------------------------------------------------------------------- servers


@pytest.fixture(scope="session")
def lite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteServer]:
    server = LiteServer(tmp_path_factory.mktemp("lite-server") / "data")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session")
def standalone_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneServer]:
    server = StandaloneServer(tmp_path_factory.mktemp("milvus-standalone") / "data")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def collection_name(request: pytest.FixtureRequest) -> str:
    """A collection name unique to the test (servers are shared by the whole session)."""
    base = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:80]
    return f"t_{base}_{int(time.time() * 1000) % 10**8}"


# ----------------------------------------------------------------------------- the command line


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("M2V_EDGE_MILVUS_TOKEN", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 300, env: dict[str, str] | None = None,
            stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run `m2v-edge ARGS` to completion in a subprocess."""
    return subprocess.run(
        [*CLI, *args], input=stdin.decode() if stdin is not None else None, capture_output=True, text=True,
        timeout=timeout, env=env or cli_env(),
    )


def start_cli(*args: str, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start `m2v-edge ARGS` in the background (its output goes to `log`, or is discarded)."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen([*CLI, *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env or cli_env())
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


def sql_count(outbox_path: Path, sql: str) -> int:
    """`SELECT COUNT(*) ...` on an outbox file from a connection of its own, as another process would see it; 0 while
    the file or its tables do not exist yet."""
    import sqlite3

    if not outbox_path.exists():
        return 0
    conn = sqlite3.connect(outbox_path, timeout=30)
    try:
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # not initialised yet
        return 0
    finally:
        conn.close()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds (generous: the machine may be loaded)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}")
        time.sleep(0.05)


# ----------------------------------------------------------------------------- checking a collection


def collection_vectors(uri: str, name: str, *, kiosk_id: str | None = None) -> dict[tuple[str, str], np.ndarray]:
    """Every (kiosk id, document id) and vector in a collection (Strong reads), of one kiosk when given; fails on a
    row returned twice or a count that disagrees with the rows read."""
    with MilvusCollection(parse_target(uri), name, timeout=60) as collection:
        collection.load()
        vectors = collection.fetch_vectors(kiosk_id=kiosk_id)
        count = collection.count(kiosk_id=kiosk_id)
    assert count == len(vectors), f"count(*) says {count} rows but {len(vectors)} distinct rows were read"
    return vectors


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two [n, dim] arrays; 1 where both rows are zero."""
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    result = (a * b).sum(1) / np.where(norms > 0, norms, 1.0)
    result[(np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(b, axis=1) == 0)] = 1.0
    return result


def assert_collection_matches(uri: str, name: str, outbox_path: Path, *, expected_ids: set[str] | None = None,
                              embedder=None) -> int:  # noqa: ANN001 - EdgeEmbedder
    """The collection holds exactly the outbox's live ids (rejected ones aside) under its kiosk id (or `expected_ids`),
    each with the
    vector of the outbox's row (cosine >= 0.99999 to its float16 search copy); with `embedder`, each remote vector
    also equals the outbox text's embedding to 1e-6 (the exact vector).

    Also checks that nothing is left waiting in the outbox. Returns the number of rows checked.
    """
    with Outbox.open(outbox_path) as outbox:
        status = outbox.status()
        kiosk = outbox.kiosk_id
        states = outbox.states()
        local = {doc_id: v for doc_id, v in outbox.vectors().items() if states[doc_id] != "rejected"}
        texts = {doc_id: text for doc_id, (text, _) in outbox.documents(local).items()} if embedder else {}
    assert status.pending == 0 and status.deleted_pending == 0, f"outbox still has rows waiting: {status}"
    if expected_ids is not None:
        assert set(local) == expected_ids, "the outbox does not hold the expected ids"
    remote = {doc_id: vector for (_, doc_id), vector in collection_vectors(uri, name, kiosk_id=kiosk).items()}
    missing = set(local) - set(remote)
    extra = set(remote) - set(local)
    assert not missing and not extra, (
        f"{len(missing)} ids missing ({sorted(missing)[:5]}), {len(extra)} extra ({sorted(extra)[:5]})"
    )
    ids = sorted(local)
    theirs = np.stack([remote[i] for i in ids])
    cosine = cosines(np.stack([local[i] for i in ids]), theirs)
    worst = int(np.argmin(cosine))
    assert cosine.min() >= 0.99999, f"vector of {ids[worst]!r} differs: cosine {cosine[worst]}"
    if embedder is not None:
        np.testing.assert_allclose(theirs, embedder.encode([texts[i] for i in ids]), atol=1e-6)
    return len(ids)


# ----------------------------------------------------------------------------- offline search


def numpy_ranking(vectors: dict[str, np.ndarray], query: np.ndarray) -> list[tuple[str, float]]:
    """Every id with its cosine to `query`, best first, ties by id."""
    ids = sorted(vectors)
    matrix = np.stack([vectors[i] for i in ids]).astype(np.float64)
    norms = np.linalg.norm(matrix, axis=1)
    scores = matrix @ query.astype(np.float64) / np.where(norms > 0, norms, 1) / np.linalg.norm(query)
    return sorted(zip(ids, scores.tolist(), strict=True), key=lambda pair: (-pair[1], pair[0]))


def assert_agrees(hits: list, ranking: list[tuple[str, float]], k: int, tolerance: float) -> None:
    """`hits` are the top `k` of `ranking`, in order, except where exact scores are within `tolerance` (a tie at
    float16 precision); every score within `tolerance` of the exact one."""
    exact = dict(ranking)
    assert len(hits) == k
    kth = ranking[k - 1][1]
    for position, hit in enumerate(hits):
        assert abs(hit.score - exact[hit.doc_id]) <= tolerance, (hit.doc_id, hit.score, exact[hit.doc_id])
        assert exact[hit.doc_id] >= kth - tolerance, f"{hit.doc_id} is not in the exact top {k}"
        expected_id, expected_score = ranking[position]
        assert hit.doc_id == expected_id or abs(exact[hit.doc_id] - expected_score) <= tolerance, (position, hit)
