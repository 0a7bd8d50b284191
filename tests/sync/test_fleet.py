"""The fleet test (issue 17): six kiosks, the same 500 document ids each with their own texts, syncing at once into
one Milvus (a milvus-lite server, and separately a Milvus standalone) while syncs are SIGKILLed and the server is
restarted; then deletes and re-ingests, a search filtered on a kiosk, re-targeting to a new and to a dropped and
recreated collection, offline search against NumPy, a reembed killed once, and the fleet's sync throughput against
raw pymilvus upsert of the same rows in the same run."""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from m2v_edge.sync import MilvusCollection, Outbox, parse_target, search_outbox

from .conftest import (
    VARIANT,
    assert_agrees,
    assert_collection_matches,
    collection_vectors,
    numpy_ranking,
    record_figure,
    run_cli,
    sql_count,
    start_cli,
    wait_for,
)
from .fleet import build_fleet, copies, raw_upsert, sync_all_at_once, sync_args

KIOSKS = [f"kiosk-{k}" for k in range(6)]
DOCS = 500
TOTAL = len(KIOSKS) * DOCS
SEED = 20261207


@pytest.fixture(scope="session")
def fleet_templates(tmp_path_factory: pytest.TempPathFactory, embedder, debian_records) -> dict[str, Path]:
    """Six outboxes, all pending: kiosk k holds ids doc-0 .. doc-499 with the Debian texts k*500 .. k*500+499."""
    texts = [r.text for r in debian_records]
    return build_fleet(tmp_path_factory.mktemp("fleet-templates"), embedder, KIOSKS, DOCS, texts)


@pytest.fixture(params=["lite-server", "standalone"])
def fleet_server(request: pytest.FixtureRequest):  # noqa: ANN201 - a server of tests/sync/servers.py
    return request.getfixturevalue("lite_server" if request.param == "lite-server" else "standalone_server")


def test_fleet(fleet_server, fleet_templates: dict[str, Path], tmp_path: Path, collection_name: str, embedder,
               potion_bundle: Path, request: pytest.FixtureRequest) -> None:
    label = request.node.callspec.id
    uri = fleet_server.uri

    # ---- 1. throughput: six fresh kiosks at once into a new collection, against raw pymilvus upsert
    fresh = copies(fleet_templates, tmp_path / "rate")
    raw_seconds = raw_upsert(uri, f"{collection_name}_raw", fleet_templates, embedder.fingerprint, embedder.dim)
    fleet_seconds, sync_seconds = sync_all_at_once(fresh, uri, f"{collection_name}_rate", tmp_path)
    assert sync_seconds > 0
    outboxes = copies(fleet_templates, tmp_path / "fleet")

    # ---- 2. all six at once, with SIGKILLed syncs and one server restart
    kills, restart = _sync_through_faults(outboxes, fleet_server, collection_name, tmp_path)
    assert len(kills) >= 3 and restart is not None
    # a killed milvus-lite server can lose rows it acknowledged, even of syncs that ended: the README's step after
    # a server crash; Milvus standalone must hold every row without it
    restored = _reconcile(outboxes, uri, collection_name, potion_bundle) if label == "lite-server" else 0
    _assert_fleet(uri, collection_name, outboxes, {kiosk: DOCS for kiosk in KIOSKS}, embedder)

    # ---- 3. kiosk 3 deletes 100 documents and re-ingests 50 of them with new texts
    three = outboxes["kiosk-3"]
    assert run_cli("delete", "--outbox", str(three), *[f"doc-{i}" for i in range(100)]).returncode == 0
    changed = "".join(json.dumps({"id": f"doc-{i}", "text": f"kiosk 3 rewrote document {i}: a text editor"}) + "\n"
                      for i in range(50)).encode()
    ingested = run_cli("ingest", "--bundle", str(potion_bundle), "--variant", VARIANT, "--kiosk-id", "kiosk-3",
                       "--outbox", str(three), "-", stdin=changed)
    assert ingested.returncode == 0, ingested.stderr
    for path in outboxes.values():
        result = run_cli("sync", "--outbox", str(path), "--uri", uri, "--collection", collection_name)
        assert result.returncode == 0, result.stderr
    counts = {kiosk: DOCS for kiosk in KIOSKS} | {"kiosk-3": DOCS - 50}
    _assert_fleet(uri, collection_name, outboxes, counts, embedder)
    with MilvusCollection(parse_target(uri), collection_name) as collection:
        collection.load()
        texts = {row["doc_id"]: row["text"] for row in collection.read(["doc_id", "text"], kiosk_id="kiosk-3")}
    assert texts["doc-7"] == "kiosk 3 rewrote document 7: a text editor" and "doc-77" not in texts

    # ---- 4. search in Milvus, filtered on one kiosk
    found = run_cli("search", "--bundle", str(potion_bundle), "--variant", VARIANT, "--uri", uri, "--collection",
                    collection_name, "--kiosk", "kiosk-3", "-k", "5", "--json", "kiosk 3 rewrote a text editor")
    hits = json.loads(found.stdout)["hits"]
    assert len(hits) == 5 and {h["kiosk_id"] for h in hits} == {"kiosk-3"}
    assert all(h["text"].startswith("kiosk 3 rewrote document") for h in hits)

    # ---- 5. re-targeting: a new collection, then the main one dropped and created again
    moved = run_cli("sync", "--outbox", str(outboxes["kiosk-0"]), "--uri", uri, "--collection",
                    f"{collection_name}_new", "--bundle", str(potion_bundle))
    assert moved.returncode == 0 and f"synced {DOCS} rows" in moved.stdout, moved.stderr
    assert assert_collection_matches(uri, f"{collection_name}_new", outboxes["kiosk-0"], embedder=embedder) == DOCS
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri, dedicated=True)
    client.drop_collection(collection_name)
    client.close()
    again = run_cli("sync", "--outbox", str(three), "--uri", uri, "--collection", collection_name,
                    "--bundle", str(potion_bundle))
    assert again.returncode == 0 and f"synced {DOCS - 50} rows" in again.stdout, again.stderr
    assert assert_collection_matches(uri, collection_name, three, embedder=embedder) == DOCS - 50

    # ---- 6. offline search on each kiosk agrees with an exact NumPy cosine ranking
    for kiosk, path in outboxes.items():
        with Outbox.open(path) as box:
            documents = box.documents(box.vectors())
            exact = dict(zip(documents, embedder.encode([text for text, _ in documents.values()]), strict=True))
            query = next(iter(documents.values()))[0][:80]
            hits = search_outbox(box, embedder, query, k=10)
        assert_agrees(hits, numpy_ranking(exact, embedder.encode([query])[0]), 10, tolerance=2e-4)
        assert {h.kiosk_id for h in hits} == {kiosk}

    # ---- 7. a reembed killed once and run again: every row on the new model
    new_fingerprint = _reembed_killed_once(outboxes["kiosk-4"], potion_bundle, tmp_path)
    to_new = run_cli("sync", "--outbox", str(outboxes["kiosk-4"]), "--uri", uri, "--collection",
                     f"{collection_name}_int8")
    assert to_new.returncode == 0 and f"synced {DOCS} rows" in to_new.stdout, to_new.stderr
    from m2v_edge.runtime import EdgeEmbedder

    int8 = EdgeEmbedder(potion_bundle, variant="int8")
    assert int8.fingerprint == new_fingerprint
    assert assert_collection_matches(uri, f"{collection_name}_int8", outboxes["kiosk-4"], embedder=int8) == DOCS

    record_figure(
        f"fleet ({label}): {len(KIOSKS)} kiosks x {DOCS} docs with the same ids; {len(kills)} syncs SIGKILLed "
        f"(synced rows of the killed kiosk: {kills}), server restarted at {restart}/{TOTAL} synced; then exactly "
        f"{TOTAL} rows, {DOCS} per kiosk, vectors equal ({restored} rows the server lost sent again by sync "
        f"--reconcile); after kiosk 3's 100 deletes and 50 re-ingests "
        f"{TOTAL - 50} rows; re-targeted to a new and to a recreated collection; offline search = NumPy; reembed "
        "killed once, finished on int8"
    )
    record_figure(
        f"fleet throughput ({label}): six kiosks at once {TOTAL / fleet_seconds:,.0f} rows/s wall "
        f"({fleet_seconds:.1f}s from the first process start to the last exit), {TOTAL / sync_seconds:,.0f} rows/s "
        f"from the first sync's start to the last one's end ({sync_seconds:.1f}s); raw pymilvus upsert of the same "
        f"rows from one client: {TOTAL / raw_seconds:,.0f} rows/s ({raw_seconds:.1f}s); fleet/raw = "
        f"{raw_seconds / fleet_seconds:.2f} wall, {raw_seconds / sync_seconds:.2f} syncing"
    )


def test_a_server_killed_after_some_syncs_ended_then_reconcile_restores_every_row(
        fleet_server, fleet_templates: dict[str, Path], tmp_path: Path, collection_name: str, embedder,
        potion_bundle: Path) -> None:
    """Six kiosks sync at once; the server is SIGKILLed and restarted as soon as one of them has ended while others
    still write. A killed milvus-lite server can lose rows it acknowledged, even of a sync that ended (which then
    sends nothing again): `sync --reconcile` on each kiosk, the README's step after a server crash, restores
    exactly the expected rows."""
    outboxes = copies(fleet_templates, tmp_path / "six")
    logs = {kiosk: tmp_path / f"{kiosk}.log" for kiosk in outboxes}
    procs = {kiosk: start_cli(*sync_args(path, fleet_server.uri, collection_name, batch=10), log=logs[kiosk])
             for kiosk, path in outboxes.items()}
    try:
        wait_for(lambda: any(proc.poll() is not None for proc in procs.values()), 300, "one kiosk's sync ended")
        ended = [kiosk for kiosk, proc in procs.items() if proc.poll() is not None]
        fleet_server.kill()
        fleet_server.start()
        for kiosk, proc in procs.items():
            assert proc.wait(timeout=600) == 0, logs[kiosk].read_text()[-3000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert len(ended) < len(KIOSKS), "every sync ended before the server was killed"
    _reconcile(outboxes, fleet_server.uri, collection_name, potion_bundle)
    _assert_fleet(fleet_server.uri, collection_name, outboxes, {kiosk: DOCS for kiosk in KIOSKS}, embedder)


# ----------------------------------------------------------------------------- steps


def _sync_through_faults(outboxes: dict[str, Path], server, collection: str,  # noqa: ANN001
                         tmp_path: Path) -> tuple[list[int], int | None]:
    """Six syncs at once (batches of 10); three of them SIGKILLed at random points and started again, and the server
    killed and restarted once half the rows are synced. Returns the synced count of each killed kiosk at its kill
    and the fleet's at the server kill."""
    rng = random.Random(SEED)
    logs = {kiosk: tmp_path / f"fault-{kiosk}.log" for kiosk in outboxes}
    start = {kiosk: (lambda kiosk=kiosk: start_cli(*sync_args(outboxes[kiosk], server.uri, collection, batch=10),
                                                   log=logs[kiosk])) for kiosk in outboxes}
    kill_at = {kiosk: rng.randrange(20, DOCS - 20) for kiosk in rng.sample(sorted(outboxes), 3)}
    procs = {kiosk: start[kiosk]() for kiosk in outboxes}
    kills: list[int] = []
    restart: int | None = None
    try:
        deadline = time.monotonic() + 600
        while any(proc.poll() is None for proc in procs.values()) and time.monotonic() < deadline:
            synced = {kiosk: _synced(path) for kiosk, path in outboxes.items()}
            for kiosk, target in list(kill_at.items()):
                if procs[kiosk].poll() is None and target <= synced[kiosk] < DOCS:
                    procs[kiosk].send_signal(signal.SIGKILL)
                    assert procs[kiosk].wait(timeout=60) == -signal.SIGKILL
                    kills.append(_synced(outboxes[kiosk]))
                    procs[kiosk] = start[kiosk]()
                    del kill_at[kiosk]
            if restart is None and sum(synced.values()) >= TOTAL // 2:
                running = [kiosk for kiosk, proc in procs.items() if proc.poll() is None]
                restart = sum(synced.values())
                server.kill()
                try:
                    wait_for(lambda: any(_failing(outboxes[k]) for k in running)
                             or all(procs[k].poll() is not None for k in running), 120, "a sync failing")
                    assert any(procs[k].poll() is None for k in running), "the syncs must retry, not give up"
                finally:
                    server.start()
            time.sleep(0.005)
    finally:
        for proc in procs.values():
            if proc.poll() is None and time.monotonic() > deadline:
                proc.kill()
    for kiosk, proc in procs.items():
        assert proc.wait(timeout=600) == 0, logs[kiosk].read_text()[-3000:]
    return kills, restart


def _reconcile(outboxes: dict[str, Path], uri: str, collection: str, bundle: Path) -> int:
    """`m2v-edge sync --reconcile` on each kiosk (with the bundle: a synced row sent again is embedded again);
    returns how many rows the collection had lost or changed."""
    restored = 0
    for path in outboxes.values():
        result = run_cli("sync", "--reconcile", "--outbox", str(path), "--uri", uri, "--collection", collection,
                         "--bundle", str(bundle))
        found = re.search(r"(\d+) missing, (\d+) stale", result.stdout + result.stderr)
        assert result.returncode == 0 and found, result.stdout + result.stderr
        restored += int(found[1]) + int(found[2])
    return restored


def _reembed_killed_once(path: Path, bundle: Path, tmp_path: Path) -> str:
    """A reembed SIGKILLed part-way, then run again to the end. One document per transaction gives the kill a
    window (the core embeds 500 documents in a few milliseconds); a run that still ends before the kill is undone
    from a copy and tried again."""
    args = ("reembed", "--outbox", str(path), "--bundle", str(bundle), "--variant", "int8", "--batch-size", "1")
    log = tmp_path / "reembed.log"
    before = Path(shutil.copy2(path, tmp_path / "before-reembed.outbox"))
    for _ in range(5):
        proc = start_cli(*args, log=log)
        try:
            wait_for(lambda: sql_count(path, "SELECT COUNT(*) FROM reembed") > 0 or proc.poll() is not None, 120,
                     "the reembed under way")
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                break
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, log.read_text()
        shutil.copy2(before, path)  # it ended before the kill: back to the old model, and again
    else:
        pytest.fail(f"the reembed ended before it could be killed, 5 times: {log.read_text()}")
    assert 0 < sql_count(path, "SELECT COUNT(*) FROM reembed") < DOCS
    finished = run_cli(*args)
    assert finished.returncode == 0 and "of them by an earlier run" in finished.stdout, finished.stderr
    with Outbox.open(path) as box:
        assert box.status().pending == DOCS and box.count_unembedded() == 0
        return box.fingerprint


# ----------------------------------------------------------------------------- checks


def _assert_fleet(uri: str, collection: str, outboxes: dict[str, Path], counts: dict[str, int],
                  embedder) -> None:  # noqa: ANN001
    everything = collection_vectors(uri, collection)
    per_kiosk = {kiosk: sum(1 for k, _ in everything if k == kiosk) for kiosk in KIOSKS}
    assert per_kiosk == counts and len(everything) == sum(counts.values())
    for path in outboxes.values():
        assert_collection_matches(uri, collection, path, embedder=embedder)


def _synced(path: Path) -> int:
    return sql_count(path, "SELECT COUNT(*) FROM docs WHERE state='synced'")


def _failing(path: Path) -> bool:
    return sql_count(path, "SELECT COUNT(*) FROM docs WHERE last_error IS NOT NULL") > 0
