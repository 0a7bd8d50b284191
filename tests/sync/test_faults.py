"""Fault tests with real processes, real SQLite and real Milvus servers (no mocks).

Each test ends by checking that the collection holds exactly the expected ids, once each, with vectors equal
(cosine >= 0.99999) to the outbox's (`assert_collection_matches`).
"""

from __future__ import annotations

import random
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.sync import Outbox

from .conftest import (
    N_DOCS,
    VARIANT,
    assert_collection_matches,
    record_figure,
    run_cli,
    start_cli,
    wait_for,
)
from .servers import LiteServer, free_port

SEED = 20261125


def counts(outbox_path: Path) -> tuple[int, int, int]:
    """(pending, synced, deleted-pending) of an outbox, read from this process."""
    with Outbox.open(outbox_path) as outbox:
        status = outbox.status()
    return status.pending, status.synced, status.deleted_pending


def failing(outbox_path: Path) -> int:
    """Rows of an outbox whose last push failed."""
    with Outbox.open(outbox_path) as outbox:
        return outbox.status().failing


def wait_exit(proc: subprocess.Popen[bytes], timeout: float, log: Path) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"process did not finish in {timeout}s; its output:\n{log.read_text()[-3000:]}") from None


@pytest.fixture(params=["embedded", "lite-server", "standalone"])
def any_target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "embedded":
        return "embedded", str(tmp_path / "kiosk-milvus.db")
    server = request.getfixturevalue("lite_server" if request.param == "lite-server" else "standalone_server")
    return request.param, server.uri


# ----------------------------------------------------------------------------- 1. SIGKILL the sync, resume


def test_sync_killed_at_random_points_resumes_without_loss_or_duplicates(
    any_target: tuple[str, str], outbox5000: Path, collection_name: str, tmp_path: Path
) -> None:
    label, uri = any_target
    rng = random.Random(SEED)
    args = ("sync", "--outbox", str(outbox5000), "--uri", uri, "--collection", collection_name,
            "--batch-size", "100", "--max-attempts", "20", "--max-delay", "1")
    log = tmp_path / "sync.log"
    kills: list[int] = []  # synced rows seen at each kill

    def mid_sync() -> list[int]:
        return [k for k in kills if 0 < k < N_DOCS]

    for round_number in range(15):
        if len(mid_sync()) >= 6:
            break
        proc = start_cli(*args, log=log)
        if round_number == 0:
            time.sleep(rng.uniform(0.2, 1.5))  # somewhere in start-up / connect / create collection
        else:
            threshold = counts(outbox5000)[1] + rng.randint(50, 400)
            deadline = time.monotonic() + 120
            while proc.poll() is None and counts(outbox5000)[1] < threshold and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.1))  # anywhere inside the next batch: send, ack, mark
        if proc.poll() is not None:
            break  # it finished before we could kill it
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        kills.append(counts(outbox5000)[1])
    assert len(mid_sync()) >= 5, f"kills at synced={kills}: not enough kills in the middle of the sync"
    final = run_cli(*args)
    assert final.returncode == 0, final.stderr
    # a sync killed after writing leaves the next one to compare the collection with the outbox (a crashing
    # server may lose writes it acknowledged)
    assert "compared the collection with the outbox (" in final.stdout, final.stdout
    assert assert_collection_matches(uri, collection_name, outbox5000) == N_DOCS
    record_figure(f"fault: sync SIGKILLed {len(kills)}x ({label}), synced rows at the kills {kills}, resumed: "
                  f"{N_DOCS} ids exactly once, vectors equal")


# ----------------------------------------------------------------------------- 2. server killed mid-sync


@pytest.mark.parametrize("server_kind", ["lite-server", "standalone"])
def test_server_killed_mid_sync_and_restarted(
    server_kind: str, request: pytest.FixtureRequest, outbox5000: Path, collection_name: str, tmp_path: Path
) -> None:
    server = request.getfixturevalue("lite_server" if server_kind == "lite-server" else "standalone_server")
    log = tmp_path / "sync.log"
    proc = start_cli("sync", "--outbox", str(outbox5000), "--uri", server.uri, "--collection", collection_name,
                     "--batch-size", "100", "--max-attempts", "60", "--max-delay", "2", "--timeout", "10", log=log)
    try:
        deadline = time.monotonic() + 120
        while counts(outbox5000)[1] < 1500 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the sync finished before the server could be killed"
        server.kill()
        killed_at = counts(outbox5000)[1]
        assert 0 < killed_at < N_DOCS
        wait_for(lambda: failing(outbox5000) > 0 or proc.poll() is not None, 120, "a failed attempt recorded")
        pending, synced, _ = counts(outbox5000)
        with Outbox.open(outbox5000) as outbox:
            status = outbox.status()
        assert proc.poll() is None, "the sync must keep retrying while the server is down"
        assert status.failing > 0 and status.last_error, "failed attempts are recorded on the rows"
        assert pending == N_DOCS - synced and synced >= killed_at
        started = time.monotonic()
        server.start()
        restart_seconds = time.monotonic() - started
        assert wait_exit(proc, 180, log) == 0, log.read_text()[-3000:]
    finally:
        if not server.running:
            server.start()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    assert "failed attempts" in output and re.search(r"attempt 1 of 60 failed: .*; next attempt in \d", output), output
    assert assert_collection_matches(server.uri, collection_name, outbox5000) == N_DOCS
    record_figure(f"fault: {server_kind} SIGKILLed at {killed_at}/{N_DOCS} synced, restarted in "
                  f"{restart_seconds:.1f}s; sync retried and finished: {N_DOCS} ids exactly once, vectors equal")


# ----------------------------------------------------------------------------- 3. server down from the start


def test_server_down_from_the_start_gives_up_bounded_and_keeps_rows_pending(outbox5000: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_cli("sync", "--outbox", str(outbox5000), "--uri", uri, "--collection", "c",
                     "--max-attempts", "4", "--max-delay", "0.4", "--batch-size", "250")
    elapsed = time.monotonic() - started
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "an unreachable Milvus is tried 4 times over up to 1s before the sync gives up" in lines[0], lines[0]
    attempts = [line.split(" failed: ")[0] for line in lines[1:4]]
    assert attempts == [f"m2v-edge sync: attempt {n} of 4" for n in (1, 2, 3)]
    assert all("; next attempt in " in line for line in lines[1:4]), lines
    assert len(lines) == 5 and re.search(r"\(4 attempts failed over \d+s; unsent rows stay pending\)$", lines[4])
    assert elapsed < 30
    with Outbox.open(outbox5000) as outbox:
        status = outbox.status()
        attempts = dict(outbox.db.execute("SELECT attempts, COUNT(*) FROM docs GROUP BY attempts"))
    assert status.pending == N_DOCS and status.synced == 0
    assert status.failing == 250 and attempts == {4: 250, 0: N_DOCS - 250}
    assert "127.0.0.1" in (status.last_error or "")
    record_figure(f"fault: server down from the start, bounded retry gave up after 4 attempts in {elapsed:.1f}s; "
                  f"{N_DOCS} rows still pending, error recorded on the 250 rows tried")


def test_server_down_from_the_start_then_up_completes_the_sync(
    outbox5000: Path, collection_name: str, tmp_path: Path
) -> None:
    server = LiteServer(tmp_path / "late-server")
    log = tmp_path / "sync.log"
    proc = start_cli("sync", "--outbox", str(outbox5000), "--uri", server.uri, "--collection", collection_name,
                     "--max-attempts", "30", "--max-delay", "1", log=log)
    try:
        wait_for(lambda: failing(outbox5000) > 0 or proc.poll() is not None, 120, "a failed attempt recorded")
        assert proc.poll() is None, log.read_text()
        with Outbox.open(outbox5000) as outbox:
            status = outbox.status()
        assert status.synced == 0 and status.failing > 0
        server.start()
        assert wait_exit(proc, 120, log) == 0, log.read_text()[-3000:]
        assert assert_collection_matches(server.uri, collection_name, outbox5000) == N_DOCS
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.kill()
    record_figure("fault: server down until the sync had failed once, then started: the retrying sync finished, "
                  f"{N_DOCS} ids exactly once, vectors equal")


# ----------------------------------------------------------------------------- 4. deletes during a sync


def test_deletes_and_reingests_while_a_sync_runs(
    standalone_server, outbox5000: Path, collection_name: str, tmp_path: Path, embedder, debian_records
) -> None:
    uri = standalone_server.uri
    rng = random.Random(SEED)
    ids = [r.id for r in debian_records[:N_DOCS]]
    log = tmp_path / "sync.log"
    proc = start_cli("sync", "--outbox", str(outbox5000), "--uri", uri, "--collection", collection_name,
                     "--batch-size", "50", log=log)
    deleted: set[str] = set()
    resurrected: set[str] = set()
    changed: set[str] = set()
    try:
        deadline = time.monotonic() + 120
        while counts(outbox5000)[1] < 500 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        for _ in range(4):
            assert proc.poll() is None, "the sync finished before the deletes"
            with Outbox.open(outbox5000) as outbox:
                states = outbox.states()
                synced = [i for i, s in states.items() if s == "synced" and i not in deleted]
                pending = [i for i, s in states.items() if s == "pending" and i not in deleted]
                batch = rng.sample(synced, min(40, len(synced))) + rng.sample(pending, min(40, len(pending)))
                outbox.delete(batch)  # the same call as `m2v-edge delete`, from another process than the sync
                deleted.update(batch)
                back = rng.sample(sorted(deleted - resurrected), 10)
                fresh = [i for i in rng.sample(ids, 30) if i not in deleted]
                texts = [f"changed while syncing: {i}" for i in back + fresh]
                changes = [(i, t, {"round": 2}) for i, t in zip(back + fresh, texts, strict=True)]
                outbox.put(changes, embedder.encode(texts))
            resurrected.update(back)
            changed.update(back + fresh)
            time.sleep(rng.uniform(0.05, 0.2))
        assert wait_exit(proc, 180, log) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log_text = log.read_text()
    assert "0 still waiting" in log_text, log_text  # the running sync picked up every change made meanwhile
    expected = (set(ids) - deleted) | resurrected
    assert assert_collection_matches(uri, collection_name, outbox5000, expected_ids=expected,
                                     embedder=embedder) == len(expected)
    with Outbox.open(outbox5000) as outbox:
        texts = outbox.documents(sorted(changed - (deleted - resurrected)))
    assert all(text == f"changed while syncing: {doc_id}" for doc_id, (text, _) in texts.items())
    record_figure(f"fault: {len(deleted)} deletes ({len(resurrected)} re-ingested) and {len(changed)} re-ingests "
                  f"during a standalone sync: collection = {len(expected)} expected ids exactly, vectors equal")


# ----------------------------------------------------------------------------- 5. ingest killed mid-batch


def test_ingest_killed_mid_batch_leaves_whole_batches_only(
    tmp_path: Path, potion_bundle: Path, records_file: Path, embedder, debian_records
) -> None:
    batch = 1000
    ids = [r.id for r in debian_records[:N_DOCS]]
    batches = [set(ids[i:i + batch]) for i in range(0, N_DOCS, batch)]
    outbox_path = tmp_path / "o.db"
    args = ("ingest", "--bundle", str(potion_bundle), "--variant", VARIANT, "--outbox", str(outbox_path),
            "--batch-size", str(batch), str(records_file))
    rng = random.Random(SEED)
    partial_rounds = 0
    present_counts: list[int] = []
    rounds = 5
    targets = rng.sample(range(rounds), rounds)  # committed write transactions to let through before the kill
    for round_number, target in enumerate(targets):
        if outbox_path.exists():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{outbox_path}{suffix}").unlink(missing_ok=True)
        log = tmp_path / f"ingest-{round_number}.log"
        proc = start_cli(*args, log=log)
        try:
            assert _kill_inside_a_write_transaction(proc, outbox_path, after_writes=target, timeout=60), (
                f"round {round_number}: never caught ingest inside a write transaction; log:\n{log.read_text()}"
            )
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if not outbox_path.exists() or outbox_path.stat().st_size == 0:
            present_counts.append(0)
            continue  # killed before the outbox was initialised
        conn = sqlite3.connect(outbox_path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        present = {row[0] for row in conn.execute("SELECT id FROM docs")} if _has_docs(conn) else set()
        conn.close()
        whole = [len(present & b) for b in batches]
        assert all(n in (0, batch) for n in whole), f"round {round_number}: a batch is partly present: {whole}"
        assert whole == sorted(whole, reverse=True), "batches are committed in order"
        if 0 < len(present) < N_DOCS:
            partial_rounds += 1
        present_counts.append(len(present))
    assert partial_rounds >= 1, "no kill landed between the first and the last batch"
    finish = run_cli(*args)
    assert finish.returncode == 0, finish.stderr
    with Outbox.open(outbox_path) as outbox:
        assert outbox.status().pending == N_DOCS
        exact = {r.id: r.vector for r in outbox.pending(limit=N_DOCS, max_bytes=1 << 40, up_to=outbox.high_water())}
        stored = {doc_id: exact[doc_id] for doc_id in ids[::250]}
    expected = embedder.encode([r.text for r in debian_records[:N_DOCS:250]])
    np.testing.assert_allclose(np.stack([stored[i] for i in ids[::250]]), expected, atol=1e-6)
    record_figure(f"fault: ingest SIGKILLed inside a write transaction {rounds}x (rows present after each kill: "
                  f"{present_counts}): every batch of {batch} all-or-nothing, integrity_check ok, re-run completes")


def _has_docs(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name='docs'").fetchone() is not None


def _kill_inside_a_write_transaction(
    proc: subprocess.Popen[bytes], path: Path, *, after_writes: int, timeout: float
) -> bool:
    """Once `after_writes` write transactions are committed (the outbox's change counter), SIGKILL `proc` at a
    moment it holds the outbox's write lock (seen from here: BEGIN IMMEDIATE fails).

    Returns False if the process ended first or the timeout passed.
    """
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    if proc.poll() is not None or not path.exists():
        return False
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                writes = int(conn.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0])
            except (sqlite3.OperationalError, TypeError):
                writes = 0  # not initialised yet, or briefly locked
            if writes >= after_writes:
                break
            time.sleep(0.002)
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    proc.send_signal(signal.SIGKILL)
                    return True
                raise
            conn.execute("ROLLBACK")
            time.sleep(0.0005)
        return False
    finally:
        conn.close()
