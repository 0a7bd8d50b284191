"""`m2v-edge reembed`: an outbox moved to a new model, resumable after SIGKILL, and atomic: a reader sees the old
model's vectors or the new one's, never a mix."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.errors import OutboxError
from m2v_edge.sync import Outbox, search_outbox
from m2v_edge.sync.lock import SyncLock
from m2v_edge.sync.reembed import reembed
from m2v_edge.sync.rows import search_copies

from .conftest import N_DOCS, run_cli, sql_count, start_cli

REEMBEDDED = "SELECT COUNT(*) FROM reembed"
NEAR = 3e-4
"""Largest difference between two float16 copies of one model's vector (embedded in different batches)."""


def snapshot(path: Path) -> tuple[str, dict[str, bytes]]:
    """(fingerprint, id -> search copy) read in one transaction from another connection, as any reader would."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("BEGIN")
        fingerprint = conn.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()[0]
        copies = dict(conn.execute("SELECT id, search FROM docs WHERE search IS NOT NULL"))
        conn.execute("COMMIT")
        return fingerprint, copies
    finally:
        conn.close()


def test_reembed_killed_and_rerun_switches_at_once_and_never_shows_a_mix(
    tmp_path: Path, outbox5000: Path, potion_bundle: Path, embedder, debian_records
) -> None:
    from m2v_edge.runtime import EdgeEmbedder

    new_embedder = EdgeEmbedder(potion_bundle, variant="int8")
    texts = {r.id: r.text for r in debian_records[:N_DOCS]}
    old_fingerprint, old = snapshot(outbox5000)
    ids = sorted(texts)
    old_matrix = as_matrix(old, ids)
    new_matrix = search_copies(new_embedder.encode([texts[i] for i in ids])).astype(np.float32)
    # fp32 and int8 vectors are close (cosine >= 0.9999) but each row differs by more than float16 rounding of the
    # same model's vectors embedded in other batches (one ulp, at most 2.4e-4 here)
    assert np.abs(old_matrix - new_matrix).max(axis=1).min() > 2 * NEAR
    args = ("reembed", "--outbox", str(outbox5000), "--bundle", str(potion_bundle), "--variant", "int8",
            "--batch-size", "100")
    seen: list[str] = []

    def check_reader() -> None:
        fingerprint, copies = snapshot(outbox5000)
        if fingerprint == old_fingerprint:
            assert copies == old, "a reader saw new vectors under the old model"
        else:
            assert fingerprint == new_embedder.fingerprint
            matrix = as_matrix(copies, ids)  # the new model's vectors (float16, batches embedded apart)
            assert np.abs(matrix - new_matrix).max() < NEAR, "a reader saw old vectors under the new model"
        seen.append(fingerprint)

    log = tmp_path / "reembed.log"
    proc = start_cli(*args, log=log)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and sql_count(outbox5000, REEMBEDDED) < 1000:
            check_reader()
            time.sleep(0.02)
        assert proc.poll() is None, f"reembed finished before it could be killed:\n{log.read_text()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = sql_count(outbox5000, REEMBEDDED)
    assert 0 < done < N_DOCS
    check_reader()
    assert seen[-1] == old_fingerprint, "killed before the switch: still the old model"
    proc = start_cli(*args, log=log)
    try:
        while proc.poll() is None:
            check_reader()
            time.sleep(0.01)
    finally:
        proc.wait(timeout=300)
    assert proc.returncode == 0, log.read_text()
    check_reader()
    assert seen[-1] == new_embedder.fingerprint
    assert f"re-embedded {N_DOCS} documents" in log.read_text() and "of them by an earlier run" in log.read_text()
    with Outbox.open(outbox5000) as outbox:
        assert outbox.fingerprint == new_embedder.fingerprint and outbox.status().pending == N_DOCS
        exact = {r.id: r.vector for r in outbox.pending(limit=N_DOCS, max_bytes=1 << 40, up_to=outbox.high_water())}
        hits = search_outbox(outbox, new_embedder, debian_records[3].metadata["synopsis"], k=3)
    np.testing.assert_allclose(np.stack([exact[i] for i in ids[::100]]),
                               new_embedder.encode([texts[i] for i in ids[::100]]), atol=1e-6)
    assert debian_records[3].id in [h.doc_id for h in hits]
    refused = run_cli("ingest", "--bundle", str(potion_bundle), "--variant", "fp32", "--outbox", str(outbox5000),
                      "-", stdin=b'{"id": "late", "text": "written with the old model"}\n')
    assert refused.returncode == 2 and "'m2v-edge reembed' moves it to a new model" in refused.stderr


def test_rows_written_during_a_reembed_are_embedded_again(tmp_path: Path, potion_bundle: Path, embedder) -> None:
    from m2v_edge.runtime import EdgeEmbedder

    new_embedder = EdgeEmbedder(potion_bundle, variant="int8")
    texts = [f"document number {i} about text editors" for i in range(40)]
    with Outbox.create(tmp_path / "o.db", fingerprint=embedder.fingerprint, dim=embedder.dim) as outbox, \
            Outbox.open(tmp_path / "o.db") as writer:
        outbox.put([(f"d{i}", t, {}) for i, t in enumerate(texts)], embedder.encode(texts))
        outbox.delete(["d39"])
        calls = []

        def progress(done: int, total: int) -> None:  # another process writes while the reembed runs
            calls.append(done)
            if len(calls) == 2:
                writer.put([("d0", "changed during the reembed", {})], embedder.encode(["changed during the reembed"]))
                writer.delete(["d1"])

        report = reembed(outbox, new_embedder, batch_size=10, progress=progress)
        assert report.documents == 38 and outbox.fingerprint == new_embedder.fingerprint
        exact = {r.id: r.vector for r in outbox.pending(limit=100, max_bytes=1 << 40, up_to=outbox.high_water())}
        assert set(exact) == {f"d{i}" for i in range(2, 39)} | {"d0"}
        np.testing.assert_allclose(exact["d0"], new_embedder.encode(["changed during the reembed"])[0], atol=1e-6)
        assert outbox.states()["d1"] == "deleted-pending" and outbox.states()["d39"] == "deleted-pending"
        with pytest.raises(OutboxError, match="already holds vectors of model"):
            reembed(outbox, new_embedder)


def as_matrix(copies: dict[str, bytes], ids: list[str]) -> np.ndarray:
    return np.stack([np.frombuffer(copies[i], dtype="<f2") for i in ids]).astype(np.float32)


def test_a_handle_opened_before_a_reembed_refuses_to_write_or_search_after_it(
    tmp_path: Path, potion_bundle: Path, embedder
) -> None:
    """`serve --outbox` or `ingest` running while another process re-embeds must not write old-model vectors into
    the new model's outbox, nor score old-model queries against new-model vectors."""
    from m2v_edge.runtime import EdgeEmbedder

    new_embedder = EdgeEmbedder(potion_bundle, variant="int8")
    texts = ["vim is a text editor", "emacs is a text editor too"]
    path = tmp_path / "o.db"
    with Outbox.create(path, fingerprint=embedder.fingerprint, dim=embedder.dim) as writer:
        writer.put([(f"d{i}", t, {}) for i, t in enumerate(texts)], embedder.encode(texts))
        assert search_outbox(writer, embedder, "editor", k=1)  # the shared index is built with the old model
        with Outbox.open(path) as other:  # as another process would
            reembed(other, new_embedder)
        before = snapshot(path)
        with pytest.raises(OutboxError, match="restart m2v-edge serve, ingest or sync with the new model's bundle"):
            writer.put([("late", "written with the old model", {})], embedder.encode(["written with the old model"]))
        with pytest.raises(OutboxError, match="was moved to model .* by 'm2v-edge reembed'"):
            search_outbox(writer, embedder, "editor", k=1)
        assert snapshot(path) == before
        assert before[0] == new_embedder.fingerprint
    with Outbox.open(path) as reopened:
        assert [hit.doc_id for hit in search_outbox(reopened, new_embedder, "vim editor", k=1)] == ["d0"]


def test_reembed_refuses_while_a_sync_holds_the_outbox(tmp_path: Path, potion_bundle: Path, embedder) -> None:
    """A `sync --watch` running through a reembed would send rows of both models; the reembed refuses to start."""
    from m2v_edge.runtime import EdgeEmbedder

    path = tmp_path / "o.db"
    with Outbox.create(path, fingerprint=embedder.fingerprint, dim=embedder.dim) as outbox:
        outbox.put([("d0", "vim is a text editor", {})], embedder.encode(["vim is a text editor"]))
        with SyncLock(path):  # as a running sync holds it
            with pytest.raises(OutboxError, match="while a sync is running on it: stop the sync service first"):
                reembed(outbox, EdgeEmbedder(potion_bundle, variant="int8"))
        assert outbox.fingerprint == embedder.fingerprint
        assert sql_count(path, "SELECT COUNT(*) FROM meta WHERE key='reembed_fingerprint'") == 0
        with SyncLock(path):  # the reembed let go of the lock
            pass
