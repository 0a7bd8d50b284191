"""What an outbox synced where: the lock at every entry point, new / recreated / restored collections, `--reconcile`,
schema-1 collections, aliases, and reading a collection larger than one Milvus query."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.errors import OutboxError
from m2v_edge.sync import MilvusCollection, Outbox, Syncer, SyncLock, parse_target, sync_outbox
from m2v_edge.sync.milvus_schema import PROP_FINGERPRINT, PROP_SCHEMA

from .conftest import KIOSK, VARIANT, assert_collection_matches, run_cli, write_jsonl


def small_outbox(path: Path, embedder, records, kiosk: str = KIOSK) -> Path:  # noqa: ANN001
    with Outbox.create(path, fingerprint=embedder.fingerprint, dim=embedder.dim, kiosk_id=kiosk) as outbox:
        outbox.put([(r.id, r.text, r.metadata) for r in records], embedder.encode([r.text for r in records]))
    return path


def sync_args(outbox: Path, uri: str, collection: str, *extra: str) -> tuple[str, ...]:
    return ("sync", "--outbox", str(outbox), "--uri", uri, "--collection", collection, *extra)


# ----------------------------------------------------------------------------- the lock


def test_every_entry_point_takes_the_lock_whatever_path_reaches_the_outbox(tmp_path: Path, embedder,
                                                                          debian_records) -> None:
    real = small_outbox(tmp_path / "real.db", embedder, debian_records[:5])
    link = tmp_path / "link.db"
    link.symlink_to(real)
    uri = str(tmp_path / "never-created.db")
    with SyncLock(link):  # another sync, started through the symlink
        with Outbox.open(real) as outbox:
            for call in (lambda: Syncer(outbox, MilvusCollection(parse_target(uri), "c")).run(),
                         lambda: sync_outbox(outbox, MilvusCollection(parse_target(uri), "c"))):
                with pytest.raises(OutboxError, match="another sync is already running"):
                    call()
        result = run_cli(*sync_args(tmp_path / "." / "real.db", uri, "c"))
        assert result.returncode == 2 and "another sync is already running" in result.stderr
    assert not Path(uri).exists(), "nothing was sent while the lock was held"


# ----------------------------------------------------------------------------- new, recreated, restored


def test_a_new_or_recreated_collection_gets_every_live_row_again(tmp_path: Path, lite_server, collection_name: str,
                                                               embedder, potion_bundle: Path, debian_records) -> None:
    outbox = small_outbox(tmp_path / "o.db", embedder, debian_records[:300])
    first = run_cli(*sync_args(outbox, lite_server.uri, collection_name))
    assert first.returncode == 0 and "synced 300 rows" in first.stdout, first.stderr
    assert run_cli("delete", "--outbox", str(outbox), *[r.id for r in debian_records[:10]]).returncode == 0
    assert run_cli(*sync_args(outbox, lite_server.uri, collection_name)).returncode == 0

    other = f"{collection_name}_new"
    refused = run_cli(*sync_args(outbox, lite_server.uri, other))
    assert refused.returncode == 2 and "290 rows of outbox" in refused.stderr, refused.stderr
    assert "must be sent again (to a new or repaired collection)" in refused.stderr and "(sync --bundle)" in \
        refused.stderr
    moved = run_cli(*sync_args(outbox, lite_server.uri, other, "--bundle", str(potion_bundle)))
    assert moved.returncode == 0, moved.stderr
    assert "synced 290 rows" in moved.stdout and "; 290 rows embedded again" in moved.stdout
    assert_collection_matches(lite_server.uri, other, outbox, embedder=embedder)

    from pymilvus import MilvusClient

    client = MilvusClient(uri=lite_server.uri, dedicated=True)
    client.drop_collection(collection_name)
    client.close()
    again = run_cli(*sync_args(outbox, lite_server.uri, collection_name, "--bundle", str(potion_bundle)))
    assert again.returncode == 0, again.stderr
    assert "(the collection is not the one this outbox synced to (dropped and created again?))" in again.stdout
    assert "synced 290 rows" in again.stdout
    assert_collection_matches(lite_server.uri, collection_name, outbox, embedder=embedder)
    status = json.loads(run_cli("status", "--outbox", str(outbox), "--json").stdout)
    assert {(t["uri"], t["collection"]) for t in status["targets"]} == {(lite_server.uri, collection_name),
                                                                         (lite_server.uri, other)}


def test_a_collection_restored_from_a_backup_is_repaired(tmp_path: Path, embedder, potion_bundle: Path,
                                                         debian_records) -> None:
    database = tmp_path / "kiosk-milvus.db"  # Milvus Lite: the database is a folder; its copy is a backup
    outbox = small_outbox(tmp_path / "o.db", embedder, debian_records[:300])
    args = sync_args(outbox, str(database), "docs", "--bundle", str(potion_bundle))
    assert run_cli(*args).returncode == 0
    shutil.copytree(database, tmp_path / "backup.db")
    with Outbox.open(outbox) as box:
        box.put([(r.id, r.text, r.metadata) for r in debian_records[300:400]],
                 embedder.encode([r.text for r in debian_records[300:400]]))
        changed = [(r.id, f"changed: {r.text}", r.metadata) for r in debian_records[:20]]
        box.put(changed, embedder.encode([text for _, text, _ in changed]))
        box.delete([r.id for r in debian_records[250:300]])
    assert run_cli(*args).returncode == 0
    shutil.rmtree(database)
    shutil.copytree(tmp_path / "backup.db", database)  # the server's disk restored from yesterday's backup
    repaired = run_cli(*args)
    assert repaired.returncode == 0, repaired.stderr
    assert "(the collection does not hold what this outbox last synced (restored from a backup?)): 230 rows as " \
           "synced, 100 missing, 20 stale, 50 extra" in repaired.stdout, repaired.stdout
    assert "synced 120 rows and 50 deletions" in repaired.stdout
    assert assert_collection_matches(str(database), "docs", outbox, embedder=embedder) == 350


def test_reconcile_repairs_missing_stale_and_extra_rows_and_leaves_other_kiosks_alone(
    tmp_path: Path, lite_server, collection_name: str, embedder, potion_bundle: Path, debian_records
) -> None:
    outbox = small_outbox(tmp_path / "o.db", embedder, debian_records[:200])
    neighbour = small_outbox(tmp_path / "n.db", embedder, debian_records[:30], kiosk="neighbour")
    for box in (outbox, neighbour):
        assert run_cli(*sync_args(box, lite_server.uri, collection_name)).returncode == 0

    from pymilvus import MilvusClient

    client = MilvusClient(uri=lite_server.uri, dedicated=True)
    pks = [f"{KIOSK}:{r.id}" for r in debian_records[:5]]  # five rows lost
    client.delete(collection_name, filter="pk in " + json.dumps(pks))
    vector = np.ones(embedder.dim, np.float32).tolist()
    tampered = [{"pk": f"{KIOSK}:{doc_id}", "kiosk_id": KIOSK, "doc_id": doc_id, "vector": vector, "text": "old",
                 "metadata": {}, "fingerprint": embedder.fingerprint, "digest": "0" * 32}
                for doc_id in [r.id for r in debian_records[5:8]] + ["ghost-1", "ghost-2", "ghost-3", "ghost-4"]]
    client.upsert(collection_name, tampered)  # three stale rows, four this outbox never had
    client.close()
    unnoticed = run_cli(*sync_args(outbox, lite_server.uri, collection_name))
    assert "synced 0 rows and 0 deletions" in unnoticed.stdout and "compared" not in unnoticed.stdout
    repaired = run_cli(*sync_args(outbox, lite_server.uri, collection_name, "--reconcile",
                                  "--bundle", str(potion_bundle)))
    assert repaired.returncode == 0, repaired.stderr
    assert "(asked for): 192 rows as synced, 5 missing, 3 stale, 4 extra" in repaired.stdout, repaired.stdout
    assert "synced 8 rows and 4 deletions" in repaired.stdout
    assert assert_collection_matches(lite_server.uri, collection_name, outbox, embedder=embedder) == 200
    assert assert_collection_matches(lite_server.uri, collection_name, neighbour, embedder=embedder) == 30


def test_a_schema_1_collection_is_refused_with_the_way_out(tmp_path: Path, lite_server, collection_name: str,
                                                         embedder, debian_records) -> None:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=lite_server.uri, dedicated=True)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=512)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=embedder.dim)
    schema.add_field("text", DataType.VARCHAR, max_length=65535)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("fingerprint", DataType.VARCHAR, max_length=128)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="COSINE")
    client.create_collection(collection_name, schema=schema, index_params=index,
                             properties={PROP_FINGERPRINT: embedder.fingerprint, PROP_SCHEMA: "1"})
    client.close()
    outbox = small_outbox(tmp_path / "o.db", embedder, debian_records[:3])
    result = run_cli(*sync_args(outbox, lite_server.uri, collection_name))
    assert result.returncode == 2
    assert "has m2v-edge schema 1, without kiosk ids; this m2v-edge writes schema 2: sync into a new collection " \
           "(--collection NEW), move readers to it with 'm2v-edge alias'" in result.stderr, result.stderr


# ----------------------------------------------------------------------------- aliases and reads


def test_alias_switches_readers_once_every_kiosk_synced_to_the_new_collection(
    tmp_path: Path, lite_server, collection_name: str, embedder, potion_bundle: Path, debian_records
) -> None:
    old, new, alias = f"{collection_name}_v1", f"{collection_name}_v2", f"{collection_name}_live"
    boxes = [small_outbox(tmp_path / f"{k}.db", embedder, debian_records[i * 20:(i + 1) * 20], kiosk=k)
             for i, k in enumerate(("kiosk-a", "kiosk-b"))]
    for box in boxes:
        assert run_cli(*sync_args(box, lite_server.uri, old)).returncode == 0
    switch = ("alias", "--uri", lite_server.uri, "--alias", alias)
    assert run_cli(*switch, "--collection", old).returncode == 0
    assert run_cli(*sync_args(boxes[0], lite_server.uri, new, "--bundle", str(potion_bundle))).returncode == 0
    early = run_cli(*switch, "--collection", new)
    assert early.returncode == 2 and f"1 kiosks synced to {old} but not yet to {new} (kiosk-b)" in early.stderr
    assert run_cli(*sync_args(boxes[1], lite_server.uri, new, "--bundle", str(potion_bundle))).returncode == 0
    done = run_cli(*switch, "--collection", new)
    assert done.returncode == 0 and f"alias {alias} now points at {new} (before: {old})" in done.stdout, done.stderr
    with MilvusCollection(parse_target(lite_server.uri), alias) as collection:
        assert collection.alias_target(alias) == new
        assert collection.count() == 40


def test_reads_larger_than_one_query_are_split_by_primary_key(tmp_path: Path, lite_server, collection_name: str,
                                                              embedder, debian_records) -> None:
    outbox = small_outbox(tmp_path / "o.db", embedder, debian_records[:700])
    assert run_cli(*sync_args(outbox, lite_server.uri, collection_name)).returncode == 0
    with MilvusCollection(parse_target(lite_server.uri), collection_name) as collection:
        whole = collection.read(["doc_id"], kiosk_id=KIOSK)
        split = collection.read(["doc_id"], kiosk_id=KIOSK, window=50)  # 700 rows, 50 per query at most
    assert len(whole) == 700 and sorted(r["doc_id"] for r in split) == sorted(r["doc_id"] for r in whole)


def test_sync_takes_the_outbox_variant_when_given_a_bundle(tmp_path: Path, lite_server, collection_name: str,
                                                           potion_bundle: Path, debian_records) -> None:
    outbox = tmp_path / "o.db"
    ingest = ("ingest", "--bundle", str(potion_bundle), "--variant", VARIANT, "--outbox", str(outbox))
    assert run_cli(*ingest, str(write_jsonl(tmp_path / "d.jsonl", debian_records[:20]))).returncode == 0
    result = run_cli(*sync_args(outbox, lite_server.uri, collection_name, "--bundle", str(potion_bundle)))
    assert result.returncode == 0, result.stderr
    wrong = run_cli(*sync_args(outbox, lite_server.uri, collection_name, "--bundle", str(potion_bundle),
                               "--variant", "int8"))
    assert wrong.returncode == 2 and "holds vectors of model" in wrong.stderr
