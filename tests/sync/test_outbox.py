"""The SQLite outbox on its own: durability settings, file mode, states, re-ingest, tombstones, record checks, kiosk
ids, quarantine, space, the upgrade of layout-1 files, refusals."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.errors import InputRecordsError, OutboxError
from m2v_edge.sync import Outbox, default_kiosk_id
from m2v_edge.sync.outbox import APPLICATION_ID

FP = "0123456789abcdef:fp32:norm:4"


def vecs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 4)).astype(np.float32)


def rows(*ids: str) -> list[tuple[str, str, dict[str, object]]]:
    return [(i, f"text of {i}", {"k": i}) for i in ids]


def exact(outbox: Outbox) -> dict[str, np.ndarray | None]:
    """The exact vectors a sync would send now, by id."""
    return {r.id: r.vector for r in outbox.pending(limit=1000, max_bytes=1 << 40, up_to=outbox.high_water())}


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The umask most systems use, restored afterwards (the process-wide umask is shared by every test)."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def test_new_outbox_is_private_wal_and_synchronous_full(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "o.db"
    with Outbox.create(path, fingerprint=FP, dim=4) as outbox:
        outbox.put(rows("a", "b"), vecs(2))
        assert outbox.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        for suffix in ("", "-wal", "-shm"):
            mode = stat.S_IMODE((tmp_path / f"o.db{suffix}").stat().st_mode)
            assert mode == 0o600, f"o.db{suffix} has mode {oct(mode)}"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    conn.close()


def test_rows_keep_text_metadata_exact_vector_search_copy_and_state(tmp_path: Path) -> None:
    v = vecs(3)
    long_text = "a long text that compresses well " * 40
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        outbox.put([*rows("a", "b"), ("c", long_text, {"k": "c"})], v)
        np.testing.assert_array_equal(exact(outbox)["b"], v[1])
        search = outbox.vectors()
        assert set(search) == {"a", "b", "c"}
        np.testing.assert_allclose(search["b"], v[1] / np.linalg.norm(v[1]), atol=1e-3)  # float16, normalised
        assert outbox.states() == {"a": "pending", "b": "pending", "c": "pending"}
        batch = outbox.pending(limit=10, max_bytes=1 << 20, up_to=outbox.high_water())
        assert [r.id for r in batch] == ["a", "b", "c"]
        assert batch[2].text == long_text and batch[2].metadata == {"k": "c"}
        stored = outbox.db.execute("SELECT text FROM docs WHERE id='c'").fetchone()[0]
        assert isinstance(stored, bytes) and len(stored) < len(long_text) / 5, "long texts are stored compressed"
        assert outbox.documents(["c", "zzz"]) == {"c": (long_text, {"k": "c"})}
        raw = outbox.db.execute("SELECT created, attempts, last_error FROM docs WHERE id='a'").fetchone()
        assert raw[0] > 0 and raw[1] == 0 and raw[2] is None


def test_exact_vectors_of_synced_rows_are_dropped_when_the_sync_ends(tmp_path: Path) -> None:
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        outbox.put(rows("a", "b"), vecs(2))
        outbox.put(rows("c"), vecs(1))
        batch = outbox.pending(limit=2, max_bytes=1 << 20, up_to=outbox.high_water())
        assert [r.id for r in batch] == ["a", "b"] and outbox.mark_synced(batch) == 2
        assert outbox.db.execute("SELECT COUNT(*) FROM exact").fetchone()[0] == 3, "kept until the sync ends"
        assert outbox.drop_sent_vectors() == 2 and set(exact(outbox)) == {"c"}
        assert set(outbox.vectors()) == {"a", "b", "c"}, "the search copies stay"
        assert outbox.count_unembedded() == 0
        outbox.db.execute("UPDATE docs SET state='pending'")  # as a repair does for a collection that lost them
        again = {r.id: r.vector for r in outbox.pending(limit=10, max_bytes=1 << 20, up_to=outbox.high_water())}
        assert again["a"] is None and again["b"] is None and again["c"] is not None
        assert outbox.count_unembedded() == 2


def test_reingest_replaces_the_row_and_makes_it_pending_again(tmp_path: Path) -> None:
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        outbox.put(rows("a", "b"), vecs(2, seed=1))
        batch = outbox.pending(limit=10, max_bytes=1 << 20, up_to=outbox.high_water())
        assert outbox.mark_synced(batch) == 2
        assert outbox.states() == {"a": "synced", "b": "synced"}
        new = vecs(1, seed=2)
        outbox.put([("a", "new text", {"v": 2})], new)
        assert outbox.states() == {"a": "pending", "b": "synced"}
        np.testing.assert_array_equal(exact(outbox)["a"], new[0])
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
        outbox.drop_sent_vectors()
        assert set(exact(outbox)) == {"a"} and exact(outbox)["a"] is not None, "a keeps its new exact vector"
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
        assert set(outbox.vectors()) == {"b"} and set(exact(outbox)) == {"b"}
        tombstones = outbox.tombstones(limit=10, up_to=outbox.high_water())
        assert sorted(t.id for t in tombstones) == ["a", "zzz"]
        assert outbox.mark_deleted(tombstones) == 2
        assert outbox.states() == {"b": "pending"}
        with pytest.raises(InputRecordsError, match="'id' contains control characters"):
            outbox.delete(["ok", "bad\nid"])
        assert outbox.states() == {"b": "pending"}


def test_failures_are_counted_and_the_last_error_kept(tmp_path: Path) -> None:
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        outbox.put(rows("a", "b"), vecs(2))
        batch = outbox.pending(limit=10, max_bytes=1 << 20, up_to=outbox.high_water())
        outbox.record_failure(batch, "first")
        outbox.record_failure(batch[:1], "second")
        status = outbox.status()
        assert status.pending == 2 and status.failing == 2 and status.last_error in ("first", "second")
        attempts = dict(outbox.db.execute("SELECT id, attempts FROM docs"))
        assert attempts == {"a": 2, "b": 1}
        assert outbox.mark_synced(batch) == 2
        assert outbox.status().failing == 0


def test_rejected_rows_are_set_aside_listed_and_can_be_retried(tmp_path: Path) -> None:
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        outbox.put(rows("a", "b", "c"), vecs(3))
        outbox.delete(["gone"])
        batch = outbox.pending(limit=10, max_bytes=1 << 20, up_to=outbox.high_water())
        assert outbox.mark_rejected([batch[1]], "Milvus refused it") == 1
        assert outbox.mark_rejected(outbox.tombstones(limit=10, up_to=outbox.high_water()), "no delete") == 1
        status = outbox.status()
        assert (status.pending, status.rejected, status.deleted_pending) == (2, 2, 0)
        assert outbox.count_waiting() == 2, "rejected rows do not wait for a sync"
        assert {(r.id, r.error) for r in outbox.rejected()} == {("b", "Milvus refused it"), ("gone", "no delete")}
        assert "b" in outbox.vectors(), "a rejected document can still be searched offline"
        assert outbox.retry_rejected() == 2
        assert outbox.states() == {"a": "pending", "b": "pending", "c": "pending", "gone": "deleted-pending"}
        np.testing.assert_array_equal(exact(outbox)["b"], batch[1].vector)  # kept for the retry


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


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("x" * 600, "t", {}), "row 2: 'id' is longer than 512 bytes"),
        (("", "t", {}), "row 2: 'id' must be a non-empty string"),
        (("a\tb", "t", {}), "row 2: 'id' contains control characters"),
        (("ok", b"bytes", {}), "row 2: 'text' must be a string"),
        (("ok", "t", ["not", "an", "object"]), "row 2: 'metadata' must be a JSON object"),
        (("ok", "t", {"v": float("nan")}), "row 2: 'metadata' cannot be written as strict JSON"),
        (("ok", "t", {"big": "x" * 70_000}), "row 2: 'metadata' is larger than 65536 bytes"),
        (("ok", "\ud800", {}), "row 2: a field holds an unpaired surrogate"),
    ],
)
def test_put_applies_the_record_checks_of_the_file_reader(tmp_path: Path, row: tuple, message: str) -> None:
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        with pytest.raises(InputRecordsError) as info:
            outbox.put([("fine", "t", {}), row], vecs(2))
        assert message in str(info.value)
        assert outbox.states() == {}, "nothing of a refused call is written"


def test_the_kiosk_id_is_set_once_when_the_outbox_is_created(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox.create(path, fingerprint=FP, dim=4, kiosk_id="lobby-1") as outbox:
        assert outbox.kiosk_id == "lobby-1"
    with Outbox.create(path, fingerprint=FP, dim=4) as outbox:
        assert outbox.kiosk_id == "lobby-1", "a later open without an id keeps it"
    with pytest.raises(OutboxError, match="belongs to kiosk 'lobby-1', not 'lobby-2'"):
        Outbox.create(path, fingerprint=FP, dim=4, kiosk_id="lobby-2")
    for bad in ("", "has space", "colon:in", "x" * 65, "-leading", "ü"):
        with pytest.raises(OutboxError, match="invalid kiosk id"):
            Outbox.create(tmp_path / "other.db", fingerprint=FP, dim=4, kiosk_id=bad)
    assert not (tmp_path / "other.db").exists()
    with Outbox.create(tmp_path / "default.db", fingerprint=FP, dim=4) as outbox:
        assert outbox.kiosk_id == default_kiosk_id()


def test_the_default_kiosk_id_is_the_host_name_and_a_hash_of_the_machine_id(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    from m2v_edge.sync import kiosk

    machine_id = tmp_path / "machine-id"
    machine_id.write_text("0123456789abcdef0123456789abcdef\n", encoding="ascii")
    monkeypatch.setattr(kiosk, "MACHINE_ID_FILES", (tmp_path / "absent", machine_id))
    monkeypatch.setattr(kiosk.socket, "gethostname", lambda: "Lobby Kiosk_7.local")
    first = kiosk.default_kiosk_id()
    assert re.fullmatch(r"Lobby-Kiosk_7\.local-[0-9a-f]{8}", first), first
    assert "0123456789abcdef" not in first, "the machine id itself is not shown"
    machine_id.write_text("fedcba9876543210fedcba9876543210\n", encoding="ascii")
    assert kiosk.default_kiosk_id() != first, "two machines with one host name get two ids"
    monkeypatch.setattr(kiosk, "MACHINE_ID_FILES", (tmp_path / "absent",))
    assert kiosk.default_kiosk_id() == "Lobby-Kiosk_7.local"


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


# ----------------------------------------------------------------------------- space


def test_a_synced_outbox_takes_less_than_twice_its_jsonl_input(tmp_path: Path, debian_records, embedder) -> None:
    """The Debian documents: ingest JSONL size against the outbox file once everything is synced (the exact vectors
    dropped, the free pages given back as a sync does at its end)."""
    from m2v_edge.sync import ingest

    jsonl = sum(len((json.dumps({"id": r.id, "text": r.text, "metadata": {"synopsis": r.metadata["synopsis"]}})
                     + "\n").encode()) for r in debian_records)
    records = [type(r)(r.id, r.text, {"synopsis": r.metadata["synopsis"]}) for r in debian_records]
    with Outbox.create(tmp_path / "o.db", fingerprint=embedder.fingerprint, dim=embedder.dim) as outbox:
        ingest(outbox, embedder, records)
        pending = outbox.file_bytes()
        while batch := outbox.pending(limit=1000, max_bytes=1 << 40, up_to=outbox.high_water()):
            outbox.mark_synced(batch)
        outbox.drop_sent_vectors()
        outbox.reclaim()
        synced = outbox.file_bytes()
        _, vacuumed = outbox.vacuum()
    assert synced / jsonl <= 2.0, f"synced outbox is {synced / jsonl:.2f}x its JSONL input"
    assert vacuumed <= synced < pending
    print(f"outbox / JSONL: {pending / jsonl:.2f}x pending, {synced / jsonl:.2f}x synced, {vacuumed / jsonl:.2f}x "
          "after vacuum")


def test_status_shows_the_file_size_and_vacuum_gives_space_back(tmp_path: Path) -> None:
    with Outbox.create(tmp_path / "o.db", fingerprint=FP, dim=4) as outbox:
        outbox.put([(f"id{i}", "some text " * 100, {}) for i in range(2000)], vecs(2000))
        full = outbox.status().file_bytes
        outbox.delete([f"id{i}" for i in range(1500)])
        assert outbox.mark_deleted(outbox.tombstones(limit=5000, up_to=outbox.high_water())) == 1500
        status = outbox.status()
        assert status.file_bytes == outbox.file_bytes() >= full * 0.9 and status.free_bytes > full / 2
        before, after = outbox.vacuum()
        assert after < before / 2 and outbox.status().free_bytes == 0
        assert len(outbox.states()) == 500


# ----------------------------------------------------------------------------- upgrade of layout 1


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE docs (id TEXT PRIMARY KEY, text TEXT NOT NULL, metadata TEXT NOT NULL, vector BLOB,
    fingerprint TEXT NOT NULL, created REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'synced', 'deleted-pending')),
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, seq INTEGER NOT NULL);
CREATE INDEX docs_state_seq ON docs (state, seq);
"""


def test_a_layout_1_outbox_is_upgraded_when_opened_with_every_row_to_send_again(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    v = vecs(3)
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("fingerprint", FP), ("dim", "4"), ("seq", "3"),
                                                        ("created", "1.0")])
    conn.executemany(
        "INSERT INTO docs VALUES (?, ?, ?, ?, ?, 1.0, ?, 0, NULL, ?)",
        [("a", "text a", '{"k": 1}', v[0].tobytes(), FP, "synced", 1),
         ("b", "text b", "{}", v[1].tobytes(), FP, "pending", 2),
         ("c", "", "{}", None, FP, "deleted-pending", 3)],
    )
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with Outbox.create(path, fingerprint=FP, dim=4, kiosk_id="old-kiosk") as outbox:
        assert outbox.kiosk_id == "old-kiosk"
        assert outbox.states() == {"a": "pending", "b": "pending", "c": "deleted-pending"}
        sent = exact(outbox)
        np.testing.assert_array_equal(sent["a"], v[0])
        np.testing.assert_array_equal(sent["b"], v[1])
        assert outbox.documents(["a"]) == {"a": ("text a", {"k": 1})}
        assert outbox.db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_status_and_vacuum_commands_show_the_size_and_give_space_back(tmp_path: Path) -> None:
    from .conftest import run_cli

    path = tmp_path / "o.db"
    with Outbox.create(path, fingerprint=FP, dim=4, kiosk_id="lobby-1") as outbox:
        outbox.put([(f"id{i}", "some text " * 100, {}) for i in range(2000)], vecs(2000))
        outbox.delete([f"id{i}" for i in range(1900)])
        outbox.mark_deleted(outbox.tombstones(limit=5000, up_to=outbox.high_water()))
    status = run_cli("status", "--outbox", str(path))
    assert status.returncode == 0 and "kiosk       lobby-1" in status.stdout
    assert re.search(r"size        [\d.]+ [kM]B \([\d.]+ kB unused: 'm2v-edge vacuum' gives it back\)", status.stdout)
    before = path.stat().st_size
    vacuumed = run_cli("vacuum", "--outbox", str(path))
    assert vacuumed.returncode == 0 and re.fullmatch(r"vacuumed \S+: [\d.]+ [kM]B -> \d+ kB\n", vacuumed.stdout)
    assert path.stat().st_size < before / 4
    assert "unused" not in run_cli("status", "--outbox", str(path)).stdout
