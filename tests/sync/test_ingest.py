"""`m2v-edge ingest`: JSONL in, vectors into the outbox; bad input refused whole, with line numbers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.errors import InputRecordsError
from m2v_edge.sync import Outbox, read_records

from .conftest import VARIANT, run_cli, sql_count, start_cli

ROWS = "SELECT COUNT(*) FROM docs"


def test_ingest_from_a_file_embeds_every_record(tmp_path: Path, potion_bundle: Path, embedder) -> None:
    docs = [
        {"id": "a", "text": "a text editor for the terminal", "metadata": {"lang": "en"}},
        {"id": "b", "text": "fonts for the latin alphabet"},
        {"id": "c\"quoted'", "text": "", "metadata": None},
        {"id": "a", "text": "a text editor with syntax highlighting", "metadata": {"lang": "en", "v": 2}},
    ]
    source = tmp_path / "docs.jsonl"
    source.write_text("\n".join(json.dumps(d) for d in docs) + "\n\n", encoding="utf-8")
    outbox_path = tmp_path / "o.db"
    result = run_cli("ingest", "--bundle", str(potion_bundle), "--variant", VARIANT, "--outbox", str(outbox_path),
                     str(source))
    assert result.returncode == 0, result.stderr
    assert "ingested 3 documents from 4 lines" in result.stdout
    assert "1 lines repeated an earlier id: the last one won" in result.stdout
    with Outbox.open(outbox_path) as outbox:
        assert outbox.fingerprint == embedder.fingerprint
        assert outbox.states() == {"a": "pending", "b": "pending", "c\"quoted'": "pending"}
        batch = {r.id: r for r in outbox.pending(limit=10, max_bytes=1 << 30, up_to=outbox.high_water())}
    stored = {doc_id: row.vector for doc_id, row in batch.items()}  # the exact vectors a sync sends
    assert batch["a"].text == docs[3]["text"] and batch["a"].metadata == {"lang": "en", "v": 2}
    assert batch["c\"quoted'"].metadata == {}
    expected = embedder.encode([docs[3]["text"], docs[1]["text"], ""])
    np.testing.assert_allclose(stored["a"], expected[0], atol=1e-6)
    np.testing.assert_allclose(stored["b"], expected[1], atol=1e-6)
    assert not stored["c\"quoted'"].any(), "an empty text embeds to the zero vector"


def test_ingest_from_stdin_and_reingest_makes_rows_pending_again(tmp_path: Path, potion_bundle: Path) -> None:
    outbox_path = tmp_path / "o.db"
    lines = b'{"id": "x", "text": "first"}\n{"id": "y", "text": "second"}\n'
    args = ("ingest", "--bundle", str(potion_bundle), "--variant", VARIANT, "--outbox", str(outbox_path), "-")
    assert run_cli(*args, stdin=lines).returncode == 0
    with Outbox.open(outbox_path) as outbox:
        outbox.mark_synced(outbox.pending(limit=10, max_bytes=1 << 30, up_to=outbox.high_water()))
        before = outbox.vectors()["x"]  # search copies (float16) are enough to see the change
    result = run_cli(*args, stdin=b'{"id": "x", "text": "first, but changed"}\n')
    assert result.returncode == 0, result.stderr
    with Outbox.open(outbox_path) as outbox:
        assert outbox.states() == {"x": "pending", "y": "synced"}
        assert not np.allclose(outbox.vectors()["x"], before)


BAD_FILES = {
    "missing id": ('{"text": "t"}\n', "line 1: missing 'id'"),
    "missing text": ('{"id": "a", "text": "ok"}\n{"id": "b"}\n', "line 2: missing 'text'"),
    "numeric id": ('{"id": 7, "text": "t"}\n', "line 1: 'id' must be a non-empty string"),
    "empty id": ('{"id": "", "text": "t"}\n', "line 1: 'id' must be a non-empty string"),
    "control character in id": ('{"id": "a\\nb", "text": "t"}\n', "line 1: 'id' contains control characters"),
    "text not a string": ('{"id": "a", "text": ["t"]}\n', "line 1: 'text' must be a string"),
    "metadata not an object": (
        '{"id": "a", "text": "t", "metadata": [1, 2]}\n', "line 1: 'metadata' must be a JSON object"
    ),
    "invalid json": (
        '{"id": "a", "text": "t"}\n{"id": "b", "text": \n{"id": "c", "text": "t"}\n',
        "line 2: invalid JSON: Expecting value at the end of the line",
    ),
    "unterminated string": (
        '{"id": "a", "text": "t', "line 1: invalid JSON: Unterminated string starting at column 21"
    ),
    "string cut by the line end": (
        '{"id": "a", "text": "t\n', "line 1: invalid JSON: Invalid control character at the end"
    ),
    "nan in metadata": ('{"id": "a", "text": "t", "metadata": {"v": NaN}}\n', "line 1: 'metadata' cannot be written"),
    "not an object": ('["a", "t"]\n', "line 1: expected a JSON object"),
    "lone surrogate": ('{"id": "a", "text": "\\ud800"}\n', "line 1: a field holds an unpaired surrogate"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_input_is_refused_whole_with_line_numbers(tmp_path: Path, potion_bundle: Path, case: str) -> None:
    content, message = BAD_FILES[case]
    source = tmp_path / "bad.jsonl"
    source.write_text(content, encoding="utf-8")
    outbox_path = tmp_path / "o.db"
    result = run_cli("ingest", "--bundle", str(potion_bundle), "--variant", VARIANT, "--outbox", str(outbox_path),
                     str(source))
    assert result.returncode == 2
    assert message in result.stderr and "nothing ingested" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not outbox_path.exists(), "a refused file must not create the outbox"


def test_bad_lines_are_all_listed_and_an_existing_outbox_is_left_as_it_was(tmp_path: Path, potion_bundle: Path) -> None:
    outbox_path = tmp_path / "o.db"
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "keep", "text": "kept"}\n', encoding="utf-8")
    base = ("ingest", "--bundle", str(potion_bundle), "--variant", VARIANT, "--outbox", str(outbox_path))
    assert run_cli(*base, str(good)).returncode == 0
    lines = [f'{{"id": "n{i}", "text": "fine"}}' for i in range(100)]
    lines[10] = "{broken"
    lines[50] = '{"id": "x"}'
    lines[99] = '{"id": "keep", "text": "replaced?"}'
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli(*base, str(bad))
    assert result.returncode == 2
    assert "2 bad line(s) of 100" in result.stderr
    assert "line 11: invalid JSON: Expecting property name enclosed in double quotes at column 2;" in result.stderr
    assert "line 51: missing 'text'" in result.stderr
    with Outbox.open(outbox_path) as outbox:
        assert outbox.states() == {"keep": "pending"}


def test_error_list_is_capped(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("nope\n" * 45, encoding="utf-8")
    with pytest.raises(InputRecordsError) as info:
        read_records(bad)
    assert "45 bad line(s) of 45" in str(info.value) and "and 25 more" in str(info.value)
    with pytest.raises(InputRecordsError, match="does not exist"):
        read_records(tmp_path / "missing.jsonl")


def test_ingest_into_an_outbox_of_another_variant_is_refused(tmp_path: Path, potion_bundle: Path) -> None:
    outbox_path = tmp_path / "o.db"
    source = tmp_path / "d.jsonl"
    source.write_text('{"id": "a", "text": "t"}\n', encoding="utf-8")
    base = ("ingest", "--bundle", str(potion_bundle), "--outbox", str(outbox_path), str(source))
    assert run_cli(*base, "--variant", "fp32").returncode == 0
    result = run_cli(*base, "--variant", "int8")
    assert result.returncode == 2
    assert "holds vectors of model" in result.stderr and ":fp32:" in result.stderr and ":int8:" in result.stderr


def test_an_outbox_that_is_not_an_m2v_edge_database_is_refused_by_every_command(
    tmp_path: Path, potion_bundle: Path
) -> None:
    impostor = tmp_path / "impostor.db"
    impostor.write_bytes(b"SQLite format 2\x00" + b"\x01" * 200)
    source = tmp_path / "d.jsonl"
    source.write_text('{"id": "a", "text": "t"}\n', encoding="utf-8")
    for args in (
        ("ingest", "--bundle", str(potion_bundle), "--outbox", str(impostor), str(source)),
        ("status", "--outbox", str(impostor)),
        ("delete", "--outbox", str(impostor), "a"),
        ("sync", "--outbox", str(impostor), "--uri", str(tmp_path / "m.db"), "--collection", "c"),
    ):
        result = run_cli(*args)
        assert result.returncode == 2, args
        assert "is not an m2v-edge outbox" in result.stderr, result.stderr
    assert impostor.read_bytes() == b"SQLite format 2\x00" + b"\x01" * 200
    assert not (tmp_path / "m.db").exists()


def test_ingest_names_its_model_and_variant_and_counts_zero_vector_texts(tmp_path: Path, potion_bundle: Path) -> None:
    source = tmp_path / "docs.jsonl"
    docs = [{"id": "en", "text": "a text editor"}, {"id": "th1", "text": "สวัสดีครับ"},
            {"id": "th2", "text": "ขอบคุณมาก"}, {"id": "emoji", "text": "😀"}]
    source.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    result = run_cli("ingest", "--bundle", str(potion_bundle), "--variant", VARIANT, "--outbox",
                     str(tmp_path / "o.db"), "--batch-size", "1", str(source))  # four batches, one warning
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("m2v-edge ingest: embedding with potion-base-8M, variant fp32 (device profile ")
    warnings = [line for line in lines if "gave zero vectors" in line]
    assert len(warnings) == 1, "warned once"
    assert "3 of 4 texts gave zero vectors: potion-base-8M knows none of their tokens" in warnings[0]
    assert "does not cover Thai: use a multilingual model such as minishlab/potion-multilingual-128M" in warnings[0]
    assert "ingested 4 documents" in result.stdout and "; 3 texts gave zero vectors" in result.stdout


def test_the_kiosk_id_is_given_on_the_first_ingest_and_kept(tmp_path: Path, potion_bundle: Path) -> None:
    source = tmp_path / "d.jsonl"
    source.write_text('{"id": "a", "text": "t"}\n', encoding="utf-8")
    base = ("ingest", "--bundle", str(potion_bundle), "--variant", VARIANT, "--outbox", str(tmp_path / "o.db"))
    assert run_cli(*base, "--kiosk-id", "lobby-3", str(source)).returncode == 0
    assert run_cli(*base, str(source)).returncode == 0
    refused = run_cli(*base, "--kiosk-id", "lobby-4", str(source))
    assert refused.returncode == 2 and "belongs to kiosk 'lobby-3', not 'lobby-4'" in refused.stderr
    status = json.loads(run_cli("status", "--outbox", str(tmp_path / "o.db"), "--json").stdout)
    assert status["kiosk_id"] == "lobby-3"


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupted_ingest_says_what_was_committed_and_that_rerunning_is_safe(
    tmp_path: Path, potion_bundle: Path, records_file: Path, signal_name: str
) -> None:
    import signal
    import sqlite3

    outbox_path = tmp_path / "o.db"
    args = ("ingest", "--bundle", str(potion_bundle), "--variant", VARIANT, "--outbox", str(outbox_path),
            "--batch-size", "50", str(records_file))
    log = tmp_path / "ingest.log"
    proc = start_cli(*args, log=log)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and sql_count(outbox_path, ROWS) < 100:
            time.sleep(0.01)
        assert proc.poll() is None, f"ingest ended before it could be interrupted:\n{log.read_text()}"
        proc.send_signal(getattr(signal, signal_name))
        assert proc.wait(timeout=60) == 130, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    committed = sql_count(outbox_path, ROWS)
    conn = sqlite3.connect(outbox_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    output = log.read_text()
    assert f"interrupted: {committed} documents were committed to {outbox_path}; running the same ingest again is " \
           "safe" in output, output
    assert 0 < committed < 5000 and committed % 50 == 0
    again = run_cli(*args)
    assert again.returncode == 0 and "ingested 5000 documents" in again.stdout, again.stderr
    assert sql_count(outbox_path, ROWS) == 5000


def test_ingest_of_in_memory_records_checks_them_all_first(tmp_path: Path, embedder) -> None:
    from m2v_edge.sync import Record, ingest

    with Outbox.create(tmp_path / "o.db", fingerprint=embedder.fingerprint, dim=embedder.dim) as outbox:
        with pytest.raises(InputRecordsError) as info:
            ingest(outbox, embedder, [Record("a", "fine"), {"id": "x" * 600, "text": "t"}, {"id": "c"}])
        assert "records: 2 bad record(s) of 3, nothing ingested" in str(info.value)
        assert "record 2: 'id' is longer than 512 bytes" in str(info.value) and "record 3: missing 'text'" in str(
            info.value)
        assert outbox.states() == {}
        records = [Record("a", "a text editor"), {"id": "b", "text": "fonts", "metadata": None}]
        report = ingest(outbox, embedder, records)
        assert report.written == 2 and outbox.states() == {"a": "pending", "b": "pending"}
