"""Rows Milvus refuses for good: found by halving the batch, quarantined (state `rejected`), listed by `status`;
the other rows sync and `watch` keeps running. A server that refuses every row is retried, not emptied."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.sync import Outbox

from .conftest import KIOSK, assert_collection_matches, run_cli, start_cli, wait_for

LONG_ID = "x" * 600
"""An id Milvus refuses (longer than the doc_id field); outboxes check ids now, older ones could hold such a row."""


def plant(outbox_path: Path, doc_id: str, dim: int) -> None:
    """Write a pending row straight into the outbox's tables, past `Outbox.put`'s checks."""
    with Outbox.open(outbox_path) as outbox, outbox.write() as seq:
        key = outbox.db.execute(
            "INSERT INTO docs (id, text, metadata, search, created, state, attempts, seq) VALUES (?, 'poison', '{}', ?,"
            " 0, 'pending', 0, ?)", (doc_id, np.ones(dim, "<f2").tobytes(), seq)).lastrowid
        outbox.db.execute("INSERT INTO exact (key, vector) VALUES (?, ?)", (key, np.ones(dim, "<f4").tobytes()))


@pytest.fixture(params=["lite-server", "standalone"])
def server(request: pytest.FixtureRequest):  # noqa: ANN201 - a server of tests/sync/servers.py
    return request.getfixturevalue("lite_server" if request.param == "lite-server" else "standalone_server")


def test_a_row_milvus_refuses_is_quarantined_and_the_others_sync(server, outbox5000: Path, collection_name: str,
                                                                 embedder) -> None:
    plant(outbox5000, LONG_ID, embedder.dim)
    args = ("sync", "--outbox", str(outbox5000), "--uri", server.uri, "--collection", collection_name,
            "--max-attempts", "2")
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert "synced 5000 rows" in result.stdout and "; 1 rows refused by Milvus and set aside" in result.stdout
    assert f"Milvus refuses row '{LONG_ID}' for good; quarantined" in result.stderr
    with Outbox.open(outbox5000) as outbox:
        assert outbox.states()[LONG_ID] == "rejected"
        (rejected,) = outbox.rejected()
    assert rejected.id == LONG_ID and "Milvus" in rejected.error
    assert assert_collection_matches(server.uri, collection_name, outbox5000, embedder=embedder) == 5000
    status = run_cli("status", "--outbox", str(outbox5000))
    assert "rejected    1 rows Milvus refused for good" in status.stdout and f"  {LONG_ID}: " in status.stdout
    data = json.loads(run_cli("status", "--outbox", str(outbox5000), "--json").stdout)
    assert data["rejected"] == 1 and data["rejected_rows"][0]["id"] == LONG_ID
    again = run_cli(*args, "--retry-rejected")
    assert "; 1 rows refused earlier sent again (--retry-rejected); 1 rows refused by Milvus" in again.stdout


def test_watch_keeps_running_past_a_poison_row(tmp_path: Path, lite_server, collection_name: str, outbox5000: Path,
                                               embedder, debian_records) -> None:
    log = tmp_path / "watch.log"
    watcher = start_cli("sync", "--outbox", str(outbox5000), "--uri", lite_server.uri, "--collection",
                        collection_name, "--watch", "--interval", "0.2", "--max-attempts", "2", log=log)
    try:
        wait_for(lambda: _count(outbox5000, "synced") == 5000, 120, "the first rows synced")
        plant(outbox5000, LONG_ID, embedder.dim)
        with Outbox.open(outbox5000) as outbox:
            outbox.put([("after-poison", "a text editor", {})], embedder.encode(["a text editor"]))
        wait_for(lambda: _count(outbox5000, "synced") == 5001 and _count(outbox5000, "rejected") == 1, 60,
                 "the row after the poison row synced, the poison row set aside")
        assert watcher.poll() is None, log.read_text()
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(timeout=60) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert "1 rows refused by Milvus and set aside" in log.read_text()


def test_a_server_refusing_every_row_is_retried_not_emptied(tmp_path: Path, lite_server, collection_name: str,
                                                            embedder, debian_records) -> None:
    """A collection whose doc_id field takes 8 bytes: Milvus refuses every longer id, as a server refusing writes
    would refuse everything. A batch of only such rows is retried; mixed with rows it takes, they are found."""
    from pymilvus import DataType, MilvusClient

    from m2v_edge.sync.milvus_schema import PROP_FINGERPRINT, PROP_IDENTITY, PROP_SCHEMA

    client = MilvusClient(uri=lite_server.uri, dedicated=True)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=577)
    schema.add_field("kiosk_id", DataType.VARCHAR, max_length=64, is_partition_key=True)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=8)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=embedder.dim)
    schema.add_field("text", DataType.VARCHAR, max_length=65535)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("fingerprint", DataType.VARCHAR, max_length=128)
    schema.add_field("digest", DataType.VARCHAR, max_length=32)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="COSINE")
    client.create_collection(collection_name, schema=schema, index_params=index, properties={
        PROP_FINGERPRINT: embedder.fingerprint, PROP_SCHEMA: "2", PROP_IDENTITY: uuid.uuid4().hex})
    client.close()
    outbox = tmp_path / "o.db"
    long_ids = [f"long-id-{i:04d}" for i in range(40)]
    with Outbox.create(outbox, fingerprint=embedder.fingerprint, dim=embedder.dim, kiosk_id=KIOSK) as box:
        box.put([(i, f"text {i}", {}) for i in long_ids], embedder.encode([f"text {i}" for i in long_ids]))
    args = ("sync", "--outbox", str(outbox), "--uri", lite_server.uri, "--collection", collection_name,
            "--max-attempts", "2", "--max-delay", "0.1")
    refused = run_cli(*args)
    assert refused.returncode == 2 and "Milvus refused every part of a batch of 40 rows" in refused.stderr
    assert _count(outbox, "pending") == 40 and _count(outbox, "rejected") == 0, "nothing quarantined"
    with Outbox.open(outbox) as box:
        box.put([(f"ok-{i}", f"text {i}", {}) for i in range(40)], embedder.encode([f"text {i}" for i in range(40)]))
        box.delete(long_ids[20:])  # 20 long ids left, between 40 good rows
    mixed = run_cli(*args, "--batch-size", "100")
    assert mixed.returncode == 0, mixed.stderr
    assert "synced 40 rows and 20 deletions" in mixed.stdout and "; 20 rows refused by Milvus" in mixed.stdout
    assert _count(outbox, "rejected") == 20 and _count(outbox, "synced") == 40


def _count(outbox_path: Path, state: str) -> int:
    with Outbox.open(outbox_path) as outbox:
        return sum(1 for value in outbox.states().values() if value == state)
