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
from collections.abc import Iterator
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
    with Outbox.create(path, fingerprint=embedder.fingerprint, dim=embedder.dim) as outbox:
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


# ----------------------------------------------------------------------------- checking a collection


def collection_vectors(uri: str, name: str) -> dict[str, np.ndarray]:
    """Every id and vector in a collection (Strong reads); fails on an id returned twice or a count mismatch."""
    with MilvusCollection(parse_target(uri), name, timeout=60) as collection:
        collection.load()
        vectors = collection.fetch_vectors()
        count = collection.count()
    assert count == len(vectors), f"count(*) says {count} rows but {len(vectors)} distinct ids were read"
    return vectors


def assert_collection_matches(uri: str, name: str, outbox_path: Path, *, expected_ids: set[str] | None = None) -> int:
    """The collection holds exactly the outbox's live ids (or `expected_ids`), each with the outbox's vector.

    Also checks that nothing is left waiting in the outbox. Returns the number of rows checked.
    """
    with Outbox.open(outbox_path) as outbox:
        status = outbox.status()
        local = outbox.vectors()
    assert status.pending == 0 and status.deleted_pending == 0, f"outbox still has rows waiting: {status}"
    if expected_ids is not None:
        assert set(local) == expected_ids, "the outbox does not hold the expected ids"
    remote = collection_vectors(uri, name)
    missing = set(local) - set(remote)
    extra = set(remote) - set(local)
    assert not missing and not extra, (
        f"{len(missing)} ids missing ({sorted(missing)[:5]}), {len(extra)} extra ({sorted(extra)[:5]})"
    )
    ids = sorted(local)
    a = np.stack([local[i] for i in ids])
    b = np.stack([remote[i] for i in ids])
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)
    zero = (np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(b, axis=1) == 0)
    cosine[zero] = 1.0
    worst = int(np.argmin(cosine))
    assert cosine.min() >= 0.99999, f"vector of {ids[worst]!r} differs: cosine {cosine[worst]}"
    return len(ids)
