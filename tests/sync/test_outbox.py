"""The SQLite outbox on its own: durability settings, file mode, states, re-ingest, tombstones, refusals."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.errors import OutboxError
from m2v_edge.sync import Outbox
from m2v_edge.sync.outbox import APPLICATION_ID

FP = "0123456789abcdef:fp32:norm:4"


def vecs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 4)).astype(np.float32)


def rows(*ids: str) -> list[tuple[str, str, dict[str, object]]]:
    return [(i, f"text of {i}", {"k": i}) for i in ids]


def test_new_outbox_is_private_wal_and_synchronous_full(tmp_path: Path) -> None:
    os.umask(0o022)
    path = tmp_path / "o.db"
    with Outbox.create(path, fingerprint=FP, dim=4) as outbox:
        outbox.put(rows("a", "b"), vecs(2))
        assert outbox._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        for suffix in ("", "-wal", "-shm"):
            mode = stat.S_IMODE((tmp_path / f"o.db{suffix}").stat().st_mode)
            assert mode == 0o600, f"o.db{suffix} has mode {oct(mode)}"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()


def test_rows_keep_text_metadata_vector_fingerprint_and_state(tmp_path: Path) -> None:
    v = vecs(3)
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        outbox.put(rows("a", "b", "c"), v)
        stored = outbox.vectors()
        assert set(stored) == {"a", "b", "c"}
        np.testing.assert_array_equal(stored["b"], v[1])
        assert outbox.states() == {"a": "pending", "b": "pending", "c": "pending"}
        batch = outbox.pending(limit=10, max_bytes=1 << 20, up_to=outbox.high_water())
        assert [r.id for r in batch] == ["a", "b", "c"]
        assert batch[2].text == "text of c" and batch[2].metadata == {"k": "c"}
        raw = outbox._conn.execute(
            "SELECT fingerprint, created, attempts, last_error FROM docs WHERE id='a'"
        ).fetchone()
        assert raw[0] == FP and raw[1] > 0 and raw[2] == 0 and raw[3] is None


def test_reingest_replaces_the_row_and_makes_it_pending_again(tmp_path: Path) -> None:
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        outbox.put(rows("a", "b"), vecs(2, seed=1))
        batch = outbox.pending(limit=10, max_bytes=1 << 20, up_to=outbox.high_water())
        assert outbox.mark_synced(batch) == 2
        assert outbox.states() == {"a": "synced", "b": "synced"}
        new = vecs(1, seed=2)
        outbox.put([("a", "new text", {"v": 2})], new)
        assert outbox.states() == {"a": "pending", "b": "synced"}
        np.testing.assert_array_equal(outbox.vectors(["a"])["a"], new[0])
        again = outbox.pending(limit=10, max_bytes=1 << 20, up_to=outbox.high_water())
        assert [(r.id, r.text, r.metadata) for r in again] == [("a", "new text", {"v": 2})]


def test_a_row_changed_while_its_push_was_in_flight_is_not_marked(tmp_path: Path) -> None:
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        outbox.put(rows("a", "b", "c"), vecs(3))
        in_flight = outbox.pending(limit=10, max_bytes=1 << 20, up_to=outbox.high_water())
        outbox.put(rows("a"), vecs(1, seed=5))  # re-ingested meanwhile
        outbox.delete(["b"])  # deleted meanwhile
        assert outbox.mark_synced(in_flight) == 1
        assert outbox.states() == {"a": "pending", "b": "deleted-pending", "c": "synced"}
        tombstones = outbox.tombstones(limit=10, up_to=outbox.high_water())
        outbox.put(rows("b"), vecs(1, seed=6))  # re-ingested while the delete was in flight
        assert outbox.mark_deleted(tombstones) == 0
        assert outbox.states()["b"] == "pending"


def test_delete_marks_tombstones_and_records_unknown_ids(tmp_path: Path) -> None:
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        outbox.put(rows("a", "b"), vecs(2))
        result = outbox.delete(["a", "zzz", "a"])
        assert (result.marked, result.unknown) == (1, 1)
        assert outbox.states() == {"a": "deleted-pending", "b": "pending", "zzz": "deleted-pending"}
        assert set(outbox.vectors()) == {"b"}
        tombstones = outbox.tombstones(limit=10, up_to=outbox.high_water())
        assert sorted(t.id for t in tombstones) == ["a", "zzz"]
        assert outbox.mark_deleted(tombstones) == 2
        assert outbox.states() == {"b": "pending"}


def test_failures_are_counted_and_the_last_error_kept(tmp_path: Path) -> None:
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        outbox.put(rows("a", "b"), vecs(2))
        batch = outbox.pending(limit=10, max_bytes=1 << 20, up_to=outbox.high_water())
        outbox.record_failure(batch, "first")
        outbox.record_failure(batch[:1], "second")
        status = outbox.status()
        assert status.pending == 2 and status.failing == 2 and status.last_error in ("first", "second")
        attempts = dict(outbox._conn.execute("SELECT id, attempts FROM docs"))
        assert attempts == {"a": 2, "b": 1}
        assert outbox.mark_synced(batch) == 2
        assert outbox.status().failing == 0


def test_pending_batches_respect_the_byte_budget_and_the_high_water_mark(tmp_path: Path) -> None:
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        outbox.put([(f"id{i}", "x" * 1000, {}) for i in range(10)], vecs(10))
        mark = outbox.high_water()
        outbox.put(rows("late"), vecs(1))
        batch = outbox.pending(limit=100, max_bytes=3500, up_to=mark)
        assert len(batch) == 3
        everything = outbox.pending(limit=100, max_bytes=1 << 30, up_to=mark)
        assert "late" not in {r.id for r in everything} and len(everything) == 10
        after = outbox.pending(limit=100, max_bytes=1 << 30, up_to=mark, after=(batch[-1].seq, batch[-1].id))
        assert [r.id for r in after] == [r.id for r in everything[3:]]


def test_vectors_of_the_wrong_shape_or_not_finite_are_refused(tmp_path: Path) -> None:
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        with pytest.raises(OutboxError, match="shape"):
            outbox.put(rows("a"), np.zeros((1, 5), np.float32))
        bad = vecs(1)
        bad[0, 0] = np.nan
        with pytest.raises(OutboxError, match="NaN"):
            outbox.put(rows("a"), bad)
        assert outbox.states() == {}


def test_an_outbox_of_another_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    Outbox.create(path, fingerprint=FP, dim=4).close()
    with pytest.raises(OutboxError, match="holds vectors of model"):
        Outbox.create(path, fingerprint="ffffffffffffffff:int8:norm:4", dim=4)
    with pytest.raises(OutboxError, match="holds vectors of model"):
        Outbox.open(path, fingerprint="ffffffffffffffff:int8:norm:4")
    with pytest.raises(OutboxError, match="holds vectors of model"):
        Outbox.create(path, fingerprint=FP, dim=8)


def test_files_that_are_not_outboxes_are_refused_and_left_untouched(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_bytes(b"just some text, not a database\n" * 10)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    before = {p: p.read_bytes() for p in (text, foreign)}
    for path in (text, foreign):
        with pytest.raises(OutboxError, match="not an m2v-edge outbox"):
            Outbox.open(path)
        with pytest.raises(OutboxError, match="not an m2v-edge outbox"):
            Outbox.create(path, fingerprint=FP, dim=4)
        assert path.read_bytes() == before[path]
        assert not Path(f"{path}-wal").exists()
    with pytest.raises(OutboxError, match="does not exist"):
        Outbox.open(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(OutboxError, match="folder"):
        Outbox.open(tmp_path)
    with pytest.raises(OutboxError, match="does not exist"):
        Outbox.create(tmp_path / "no" / "such" / "o.db", fingerprint=FP, dim=4)


def test_a_committed_write_survives_the_writer_process_being_killed(tmp_path: Path) -> None:
    """A write reported done by another process is there after that process is SIGKILLed."""
    import signal
    import subprocess
    import sys

    path = tmp_path / "o.db"
    Outbox.create(path, fingerprint=FP, dim=4).close()
    code = (
        "import sys, numpy as np\n"
        "from m2v_edge.sync import Outbox\n"
        f"o = Outbox.open({str(path)!r})\n"
        "o.put([('k', 't', {})], np.ones((1, 4), np.float32))\n"
        "print('committed', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"committed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with Outbox.open(path) as outbox:
        assert outbox.states() == {"k": "pending"}
