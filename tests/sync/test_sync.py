"""`m2v-edge sync / status / search / delete` against real Milvus targets, and the collection guard."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.errors import MilvusSyncError
from m2v_edge.sync import Outbox, Secret, SyncLock, parse_target, read_token
from m2v_edge.sync.milvus_schema import cut_text, in_filter

from .conftest import (
    KIOSK,
    N_DOCS,
    VARIANT,
    assert_collection_matches,
    cli_env,
    record_figure,
    run_cli,
    start_cli,
    wait_for,
    write_jsonl,
)

# ----------------------------------------------------------------------------- end to end, three targets


@pytest.fixture(params=["embedded", "lite-server", "standalone"])
def target_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "embedded":
        return str(tmp_path / "kiosk-milvus.db")
    server = request.getfixturevalue("lite_server" if request.param == "lite-server" else "standalone_server")
    return server.uri


def test_sync_5000_documents_then_deletes_then_search(
    target_uri: str, outbox5000: Path, collection_name: str, potion_bundle: Path, debian_records, request, embedder
) -> None:
    result = run_cli("sync", "--outbox", str(outbox5000), "--uri", target_uri, "--collection", collection_name)
    assert result.returncode == 0, result.stderr
    assert f"synced {N_DOCS} rows and 0 deletions" in result.stdout and "0 still waiting" in result.stdout
    seconds = float(result.stdout.split(" in ")[1].split("s ")[0])
    record_figure(f"sync of {N_DOCS} docs via `m2v-edge sync` into {request.node.callspec.id}: "
                  f"{N_DOCS / seconds:,.0f} docs/s ({seconds:.2f}s)")
    assert assert_collection_matches(target_uri, collection_name, outbox5000, embedder=embedder) == N_DOCS

    status = run_cli("status", "--outbox", str(outbox5000), "--json")
    assert json.loads(status.stdout)["synced"] == N_DOCS

    gone = [r.id for r in debian_records[:40]]
    deleted = run_cli("delete", "--outbox", str(outbox5000), *gone, "never-existed")
    assert deleted.returncode == 0 and "(1 not in this outbox" in deleted.stdout
    again = run_cli("sync", "--outbox", str(outbox5000), "--uri", target_uri, "--collection", collection_name)
    assert again.returncode == 0 and "synced 0 rows and 41 deletions" in again.stdout, again.stdout + again.stderr
    assert assert_collection_matches(target_uri, collection_name, outbox5000) == N_DOCS - 40

    wanted = debian_records[100]
    found = run_cli("search", "--bundle", str(potion_bundle), "--variant", VARIANT, "--uri", target_uri,
                    "--collection", collection_name, "-k", "10", "--json", wanted.metadata["synopsis"])
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert len(hits) == 10 and [h["rank"] for h in hits] == list(range(1, 11))
    assert wanted.id in [h["doc_id"] for h in hits], "the query's own document is in its top 10"
    top = hits[0]
    assert set(top) == {"rank", "doc_id", "kiosk_id", "score", "text", "metadata"} and top["metadata"]["synopsis"]
    assert top["kiosk_id"] == KIOSK
    assert not {h["doc_id"] for h in hits} & set(gone)


def test_status_reports_counts_and_failures(outbox5000: Path, tmp_path: Path) -> None:
    with Outbox.open(outbox5000) as outbox:
        outbox.delete([next(iter(outbox.states())), "no-such-id"])
        first = outbox.pending(limit=3, max_bytes=1 << 30, up_to=outbox.high_water())
        outbox.record_failure(first, "Milvus upsert failed: boom")
    text = run_cli("status", "--outbox", str(outbox5000))
    assert text.returncode == 0
    assert f"pending     {N_DOCS - 1}" in text.stdout and "deleted     2" in text.stdout
    assert "failing     3 rows; last error: Milvus upsert failed: boom" in text.stdout
    data = json.loads(run_cli("status", "--outbox", str(outbox5000), "--json").stdout)
    assert data["pending"] == N_DOCS - 1 and data["deleted_pending"] == 2 and data["failing"] == 3


# ----------------------------------------------------------------------------- the collection guard


def test_a_collection_of_another_model_or_dim_is_refused(tmp_path: Path, lite_server, collection_name: str) -> None:
    uri = lite_server.uri
    first = tmp_path / "first.db"
    with Outbox.create(first, fingerprint="aaaaaaaaaaaaaaaa:fp32:norm:8", dim=8) as outbox:
        outbox.put([("a", "t", {})], np.ones((1, 8), np.float32))
    assert run_cli("sync", "--outbox", str(first), "--uri", uri, "--collection", collection_name).returncode == 0

    other_model = tmp_path / "other-model.db"
    with Outbox.create(other_model, fingerprint="aaaaaaaaaaaaaaaa:int8:norm:8", dim=8) as outbox:
        outbox.put([("b", "t", {})], np.ones((1, 8), np.float32))
    result = run_cli("sync", "--outbox", str(other_model), "--uri", uri, "--collection", collection_name,
                     "--max-attempts", "1")
    assert result.returncode == 2
    assert "holds vectors of model aaaaaaaaaaaaaaaa:fp32:norm:8, not aaaaaaaaaaaaaaaa:int8:norm:8" in result.stderr

    other_dim = tmp_path / "other-dim.db"
    with Outbox.create(other_dim, fingerprint="aaaaaaaaaaaaaaaa:fp32:norm:16", dim=16) as outbox:
        outbox.put([("c", "t", {})], np.ones((1, 16), np.float32))
    result = run_cli("sync", "--outbox", str(other_dim), "--uri", uri, "--collection", collection_name)
    assert result.returncode == 2 and "holds 8-dim vectors but the outbox's model gives 16" in result.stderr
    with Outbox.open(other_dim) as outbox:
        assert outbox.status().pending == 1 and "8-dim" in (outbox.status().last_error or "")

    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri, dedicated=True)
    client.create_collection(f"{collection_name}_foreign", dimension=8, id_type="string", max_length=64)
    client.close()
    result = run_cli("sync", "--outbox", str(first), "--uri", uri, "--collection", f"{collection_name}_foreign")
    assert result.returncode == 2 and "was not created by m2v-edge" in result.stderr


def test_search_refuses_a_collection_of_another_variant_and_a_zero_query(
    tmp_path: Path, potion_bundle: Path, outbox5000: Path, collection_name: str
) -> None:
    uri = str(tmp_path / "kiosk.db")
    small = tmp_path / "small.db"
    with Outbox.open(outbox5000) as src, Outbox.create(small, fingerprint=src.fingerprint, dim=src.dim) as dst:
        rows = src.pending(limit=50, max_bytes=1 << 30, up_to=src.high_water())
        dst.put([(r.id, r.text, r.metadata) for r in rows], np.stack([r.vector for r in rows]))
    assert run_cli("sync", "--outbox", str(small), "--uri", uri, "--collection", collection_name).returncode == 0
    result = run_cli("search", "--bundle", str(potion_bundle), "--variant", "int8", "--uri", uri,
                     "--collection", collection_name, "anything")
    assert result.returncode == 2 and ":fp32:" in result.stderr and ":int8:" in result.stderr
    missing = run_cli("search", "--bundle", str(potion_bundle), "--uri", str(tmp_path / "nothing.db"),
                      "--collection", collection_name, "anything")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert not (tmp_path / "nothing.db").exists()
    zero = run_cli("search", "--bundle", str(potion_bundle), "--variant", VARIANT, "--uri", uri, "--collection",
                   collection_name, "--json", "🎉 🎉")
    assert zero.returncode == 2 and zero.stdout == "", "no hits scored 0 are listed"
    assert "no meaningful hits for this query: 1 text gave zero vectors: potion-base-8M knows none" in zero.stderr


# ----------------------------------------------------------------------------- targets and secrets


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("tcp://127.0.0.1:19530", "unsupported Milvus target scheme 'tcp://'"),
        ("grpc://localhost:19530", "unsupported Milvus target scheme 'grpc://'"),
        ("s3://bucket/x.db", "unsupported Milvus target scheme 's3://'"),
        ("kiosk-milvus", "neither an http(s):// URL nor a Milvus Lite path ending in .db"),
        ("http://", "has no host name"),
        ("http://user:pw@127.0.0.1:19530", "do not put credentials in the Milvus URL"),
        ("/no/such/folder/k.db", "folder /no/such/folder does not exist"),
    ],
)
def test_unusable_uris_are_refused(uri: str, message: str, outbox5000: Path) -> None:
    with pytest.raises(MilvusSyncError) as info:
        parse_target(uri)
    assert message in str(info.value)
    result = run_cli("sync", "--outbox", str(outbox5000), "--uri", uri, "--collection", "c")
    assert result.returncode == 2 and message in result.stderr
    assert "pw" not in result.stderr
    with Outbox.open(outbox5000) as outbox:
        assert outbox.status().pending == N_DOCS and outbox.status().failing == 0


def test_the_token_is_never_printed_or_logged(tmp_path: Path, outbox5000: Path, lite_server) -> None:
    token = "s3cr3t-T0KEN-value"
    down = "http://127.0.0.1:9"  # nothing listens on the discard port
    for extra in ([], ["-v"]):
        env = cli_env(M2V_EDGE_MILVUS_TOKEN=token)
        result = run_cli(*extra, "sync", "--outbox", str(outbox5000), "--uri", down, "--collection", "c",
                         "--max-attempts", "2", "--max-delay", "0.1", env=env)
        assert result.returncode != 0
        assert token not in result.stdout + result.stderr
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    assert read_token(token_file).reveal() == token
    ok = run_cli("-v", "sync", "--outbox", str(outbox5000), "--uri", lite_server.uri, "--collection", "tok",
                 "--token-file", str(token_file), "--batch-size", "2000")
    assert ok.returncode == 0, ok.stderr
    assert token not in ok.stdout + ok.stderr
    with Outbox.open(outbox5000) as outbox:
        assert token not in (outbox.status().last_error or "")
        assert all(token not in (row[0] or "") for row in outbox.db.execute("SELECT last_error FROM docs"))
    secret = Secret(token)
    assert token not in repr(secret) + str(secret) + f"{secret}" + repr(parse_target("http://h:1", token=secret))
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(MilvusSyncError, match="is empty"):
        read_token(tmp_path / "empty")


# ----------------------------------------------------------------------------- watch, lock, ids, extras


def test_watch_syncs_new_rows_as_they_arrive_and_stops_cleanly(
    tmp_path: Path, potion_bundle: Path, lite_server, collection_name: str, debian_records
) -> None:
    outbox_path = tmp_path / "o.db"
    ingest = ("ingest", "--bundle", str(potion_bundle), "--variant", VARIANT, "--outbox", str(outbox_path))
    assert run_cli(*ingest, str(write_jsonl(tmp_path / "a.jsonl", debian_records[:300]))).returncode == 0
    log = tmp_path / "watch.log"
    watcher = start_cli("sync", "--outbox", str(outbox_path), "--uri", lite_server.uri, "--collection",
                        collection_name, "--watch", "--interval", "0.3", "--max-attempts", "2", "--max-delay", "0.2",
                        log=log)
    try:
        wait_for(lambda: _status(outbox_path)["synced"] == 300, 60, "first rows synced by --watch")
        assert run_cli(*ingest, str(write_jsonl(tmp_path / "b.jsonl", debian_records[300:700]))).returncode == 0
        assert run_cli("delete", "--outbox", str(outbox_path), debian_records[0].id).returncode == 0
        wait_for(lambda: _status(outbox_path)["synced"] == 699 and _status(outbox_path)["deleted_pending"] == 0,
                  60, "new rows synced by --watch")
        lite_server.kill()  # an outage longer than the retry budget: --watch must wait it out, not exit
        try:
            assert run_cli(*ingest, str(write_jsonl(tmp_path / "c.jsonl", debian_records[700:800]))).returncode == 0
            wait_for(lambda: "sync paused: " in log.read_text(), 60, "--watch noticing the outage")
            assert "; trying again in 0.3s" in log.read_text(), "--watch says what happens next"
            assert watcher.poll() is None and _status(outbox_path)["pending"] == 100
        finally:
            lite_server.start()
        wait_for(lambda: _status(outbox_path)["synced"] == 799, 60, "rows synced after the outage")
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(timeout=30) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    # every write counted, the one of the pass the outage cut short too (a pass may send again what a restarted
    # server lost: exactness is checked on the collection itself)
    upserted, deleted = map(int, re.search(r"synced (\d+) rows and (\d+) deletions to", log.read_text()).groups())
    assert upserted >= 800 and deleted >= 1, log.read_text()
    assert_collection_matches(lite_server.uri, collection_name, outbox_path)


def test_only_one_sync_runs_per_outbox(outbox5000: Path, tmp_path: Path) -> None:
    with SyncLock(outbox5000):
        result = run_cli("sync", "--outbox", str(outbox5000), "--uri", str(tmp_path / "k.db"), "--collection", "c")
    assert result.returncode == 2 and "another sync is already running" in result.stderr
    assert not (tmp_path / "k.db").exists()


def test_retry_rejected_waits_for_the_sync_lock(outbox5000: Path, tmp_path: Path) -> None:
    """--retry-rejected changes rows' states: it must not run while another sync (which may be marking rows
    rejected) holds the outbox."""
    with Outbox.open(outbox5000) as outbox:
        first = outbox.pending(limit=1, max_bytes=1 << 20, up_to=outbox.high_water())
        assert outbox.mark_rejected(first, "Milvus refused it") == 1
    with SyncLock(outbox5000):
        result = run_cli("sync", "--outbox", str(outbox5000), "--uri", str(tmp_path / "k.db"), "--collection", "c",
                         "--retry-rejected")
    assert result.returncode == 2 and "another sync is already running" in result.stderr
    with Outbox.open(outbox5000) as outbox:
        assert outbox.states()[first[0].id] == "rejected"


def test_awkward_ids_survive_upsert_delete_and_readback(tmp_path: Path, lite_server, collection_name: str) -> None:
    ids = ['a"b', "c'd", "e\\f", 'g\\"h', "ü ñ 漢", "😀", "\\u0041", "a, b]", "x" * 512, "or id != ''"]
    outbox_path = tmp_path / "o.db"
    with Outbox.create(outbox_path, fingerprint="bbbbbbbbbbbbbbbb:fp32:norm:4", dim=4) as outbox:
        outbox.put([(i, "é" * 40_000, {"i": i}) for i in ids], np.random.default_rng(0).random((len(ids), 4)))
    args = ("sync", "--outbox", str(outbox_path), "--uri", lite_server.uri, "--collection", collection_name)
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "; 10 texts cut to Milvus's 65,535 bytes (the outbox keeps them whole)" in first.stdout, first.stdout
    assert_collection_matches(lite_server.uri, collection_name, outbox_path)
    with Outbox.open(outbox_path) as outbox:
        assert outbox.documents(ids[:1])[ids[0]][0] == "é" * 40_000
    assert run_cli("delete", "--outbox", str(outbox_path), *ids[:5], ids[-1]).returncode == 0
    assert run_cli(*args).returncode == 0
    assert_collection_matches(lite_server.uri, collection_name, outbox_path, expected_ids=set(ids[5:-1]))
    assert len(cut_text("é" * 40_000).encode()) <= 65_535
    assert in_filter("pk", ['a"b']) == 'pk in ["a\\"b"]'


def test_without_pymilvus_the_commands_ask_for_the_extra(tmp_path: Path, outbox5000: Path) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "block.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pymilvus', 'milvus_lite'):\n"
        "            raise ImportError(f'blocked {name}')\n"
        "sys.meta_path.insert(0, _Block())\n",
        encoding="utf-8",
    )
    def blocked_cli(*args: str) -> subprocess.CompletedProcess[str]:
        code = f"import sys; sys.path.insert(0, {str(blocker)!r}); import block; from m2v_edge.cli import main; " \
               "sys.exit(main(sys.argv[1:]))"
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                              env=cli_env())

    result = blocked_cli("sync", "--outbox", str(outbox5000), "--uri", str(tmp_path / "k.db"), "--collection", "c")
    assert result.returncode == 2, result.stderr
    assert "needs the 'milvus' extra: pip install 'm2v-edge[milvus]'" in result.stderr
    assert blocked_cli("status", "--outbox", str(outbox5000)).returncode == 0, "the outbox works without pymilvus"


def test_the_runtime_and_the_outbox_never_import_pymilvus() -> None:
    code = (
        "import sys\n"
        "import m2v_edge.runtime, m2v_edge.sync, m2v_edge.commands.sync\n"
        "from m2v_edge.sync import Outbox, parse_target\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pymilvus', 'milvus_lite', 'grpc'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- helpers


def _status(outbox_path: Path) -> dict:
    with Outbox.open(outbox_path) as outbox:
        status = outbox.status()
    return {"synced": status.synced, "pending": status.pending, "deleted_pending": status.deleted_pending}


def test_a_milvus_lite_database_open_in_another_process_is_refused_clearly(outbox5000: Path, tmp_path: Path) -> None:
    from m2v_edge.sync import MilvusCollection

    uri = str(tmp_path / "busy.db")
    holder = MilvusCollection(parse_target(uri), "c")
    holder.connect()  # this process now holds the database's lock
    try:
        result = run_cli("sync", "--outbox", str(outbox5000), "--uri", uri, "--collection", "c")
    finally:
        holder.close()
    assert result.returncode == 2
    assert "cannot open Milvus Lite database" in result.stderr and "another process has it open" in result.stderr
    with Outbox.open(outbox5000) as outbox:
        status = outbox.status()
    assert status.pending == N_DOCS and "another process" in (status.last_error or "")
