"""`/documents` and `/search` over a real outbox: records checked and written as `m2v-edge ingest` writes them,
hits equal to `search_outbox`'s, the kiosk filter, and an outbox of another model refused at start-up."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from m2v_edge.sync import Outbox, search_outbox

from .conftest import VARIANT, ServeProcess, serve_env, start_server

DEBIAN = Path(__file__).resolve().parents[2] / "bench" / "data" / "debian-descriptions-public.jsonl"
N_DOCS = 300
QUERIES = ["a text editor for the terminal", "play music and video", "tools to monitor hard drives", "PDF viewer"]


@pytest.fixture(scope="module")
def records() -> list[dict]:
    lines = DEBIAN.read_text(encoding="utf-8").splitlines()[:N_DOCS]
    rows = [json.loads(line) for line in lines]
    return [{"id": row["package"], "text": row["document"], "metadata": {"title": row["query"]}} for row in rows]


@pytest.fixture(scope="module")
def kiosk(potion_bundle: Path, tmp_path_factory: pytest.TempPathFactory,
          records: list[dict]) -> Iterator[tuple[ServeProcess, str, Path]]:
    """A server whose outbox it created, filled through `/documents` in three requests."""
    outbox = tmp_path_factory.mktemp("kiosk") / "kiosk.outbox"
    server, url = start_server(potion_bundle, "--outbox", str(outbox))
    for start in range(0, N_DOCS, 100):
        reply = requests.post(f"{url}/documents", json=records[start : start + 100], timeout=120)
        assert reply.status_code == 200, reply.text
        assert reply.json()["written"] == 100 and reply.json()["warning"] is None
    yield server, url, outbox
    assert server.stop() == 0, server.lines


def test_documents_are_in_the_outbox_pending_as_ingest_leaves_them(kiosk, records: list[dict], embedder) -> None:
    _, url, outbox_path = kiosk
    with Outbox.open(outbox_path) as outbox:
        status = outbox.status()
        assert (status.pending, status.synced, status.fingerprint) == (N_DOCS, 0, embedder.fingerprint)
        assert outbox.documents([records[5]["id"]]) == {records[5]["id"]: (records[5]["text"], records[5]["metadata"])}
        assert requests.get(f"{url}/info", timeout=60).json()["outbox"]["kiosk_id"] == outbox.kiosk_id
    done = subprocess.run([sys.executable, "-m", "m2v_edge.cli", "status", "--outbox", str(outbox_path), "--json"],
                          capture_output=True, text=True, timeout=120, env=serve_env())
    assert json.loads(done.stdout)["pending"] == N_DOCS


def test_search_hits_equal_search_outbox(kiosk, embedder) -> None:
    _, url, outbox_path = kiosk
    for query in QUERIES:
        hits = requests.post(f"{url}/search", json={"query": query, "k": 5}, timeout=60).json()["hits"]
        expected = search_outbox(outbox_path, embedder, query, k=5)
        assert [(h["id"], h["score"], h["text"], h["metadata"], h["kiosk_id"]) for h in hits] == [
            (e.doc_id, e.score, e.text, e.metadata, e.kiosk_id) for e in expected]
    default_k = requests.post(f"{url}/search", json={"query": QUERIES[0]}, timeout=60).json()["hits"]
    assert len(default_k) == 10


def test_search_by_kiosk(kiosk) -> None:
    _, url, outbox_path = kiosk
    with Outbox.open(outbox_path) as outbox:
        own = outbox.kiosk_id
    assert len(requests.post(f"{url}/search", json={"query": "editor", "kiosk": own}, timeout=60).json()["hits"]) == 10
    assert requests.post(f"{url}/search", json={"query": "editor", "kiosk": "other"}, timeout=60).json() == {"hits": []}


def test_a_bad_record_refuses_the_whole_request(kiosk) -> None:
    _, url, outbox_path = kiosk
    reply = requests.post(f"{url}/documents", json=[{"id": "new-1", "text": "fine"}, {"id": "new-2", "text": None},
                                                    {"id": "x" * 600, "text": "long id"}], timeout=60)
    assert reply.status_code == 422
    assert reply.json()["error"].startswith("records: 2 bad record(s) of 3, nothing ingested: record 2: 'text' must")
    with Outbox.open(outbox_path) as outbox:
        assert outbox.status().pending == N_DOCS and outbox.documents(["new-1"]) == {}


def test_a_document_that_embeds_to_zero_is_stored_with_a_warning(kiosk) -> None:
    _, url, outbox_path = kiosk
    reply = requests.post(f"{url}/documents", json={"id": "emoji-only", "text": "🙂🎉"}, timeout=60).json()
    assert reply["written"] == 1 and reply["zero_vectors"] == 1
    assert reply["warning"].startswith("1 text gave zero vectors: potion-base-8M knows none of their tokens")
    with Outbox.open(outbox_path) as outbox:
        assert "emoji-only" in outbox.documents(["emoji-only"])


def test_an_outbox_of_another_model_is_refused_at_start(potion_bundle: Path, tmp_path: Path) -> None:
    from m2v_edge.runtime import EdgeEmbedder

    other = EdgeEmbedder(potion_bundle, variant="fp32", profile="generic")
    path = tmp_path / "fp32.outbox"
    Outbox.create(path, fingerprint=other.fingerprint, dim=other.dim, kiosk_id="k1").close()
    server = ServeProcess(str(potion_bundle), "--variant", VARIANT, "--port", "0", "--outbox", str(path))
    assert server.wait_exit(timeout=300) == 2
    assert len(server.lines) == 1 and "holds vectors of model" in server.lines[0] and ":fp32:" in server.lines[0]


def test_the_outbox_variant_is_the_default(potion_bundle: Path, tmp_path: Path) -> None:
    from m2v_edge.runtime import EdgeEmbedder

    fp32 = EdgeEmbedder(potion_bundle, variant="fp32", profile="generic")
    path = tmp_path / "fp32.outbox"
    Outbox.create(path, fingerprint=fp32.fingerprint, dim=fp32.dim, kiosk_id="k1").close()
    server = ServeProcess(str(potion_bundle), "--port", "0", "--outbox", str(path))
    try:
        url = server.wait_ready()
        assert requests.get(f"{url}info", timeout=60).json()["variant"] == "fp32"
    finally:
        assert server.stop() == 0


def test_without_an_outbox_search_says_how_to_get_one(server_url: str) -> None:
    for method, path in (("POST", "/search"), ("POST", "/documents"), ("GET", "/")):
        reply = requests.request(method, server_url + path, json={"query": "x"}, timeout=60)
        assert reply.status_code == 404
        assert reply.json()["error"] == f"{path} needs an outbox: start m2v-edge serve with --outbox FILE"


def test_documents_are_written_in_one_transaction_however_many(potion_bundle: Path, tmp_path: Path,
                                                                records: list[dict]) -> None:
    """`/documents` is all or nothing: more records than ingest's default batch (512) still go in one transaction,
    so that a failure part-way (a full disk, a reembed meanwhile) cannot leave some of them written."""
    path = tmp_path / "kiosk.outbox"
    server, url = start_server(potion_bundle, "--outbox", str(path))
    try:
        many = [{**record, "id": f"{record['id']}-{copy}"} for copy in range(2) for record in records]  # 600
        reply = requests.post(f"{url}/documents", json=many, timeout=120)
        assert reply.status_code == 200 and reply.json()["written"] == 2 * N_DOCS, reply.text
    finally:
        assert server.stop() == 0, server.lines
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT seq) FROM docs").fetchone() == (2 * N_DOCS, 1)
    finally:
        conn.close()


def test_kiosk_id_names_the_outbox_serve_creates(potion_bundle: Path, tmp_path: Path) -> None:
    path = tmp_path / "kiosk.outbox"
    server, url = start_server(potion_bundle, "--outbox", str(path), "--kiosk-id", "lobby-2")
    try:
        assert requests.get(f"{url}/info", timeout=60).json()["outbox"]["kiosk_id"] == "lobby-2"
        reply = requests.post(f"{url}/documents", json={"id": "faq-1", "text": "opening hours"}, timeout=60)
        assert reply.json()["kiosk_id"] == "lobby-2"
    finally:
        assert server.stop() == 0, server.lines
    with Outbox.open(path) as outbox:
        assert outbox.kiosk_id == "lobby-2"
    other = ServeProcess(str(potion_bundle), "--port", "0", "--outbox", str(path), "--kiosk-id", "lobby-3")
    assert other.wait_exit(timeout=300) == 2
    assert "belongs to kiosk 'lobby-2', not 'lobby-3'" in other.lines[-1]


def test_an_invalid_kiosk_id_or_one_without_an_outbox_is_refused(potion_bundle: Path, tmp_path: Path) -> None:
    path = tmp_path / "kiosk.outbox"
    bad = ServeProcess(str(potion_bundle), "--port", "0", "--outbox", str(path), "--kiosk-id", "lobby 2")
    assert bad.wait_exit(timeout=300) == 2
    assert "invalid kiosk id 'lobby 2'" in bad.lines[-1] and not path.exists()
    lonely = ServeProcess(str(potion_bundle), "--port", "0", "--kiosk-id", "lobby-2")
    assert lonely.wait_exit(timeout=300) == 2
    assert "--kiosk-id lobby-2 names the kiosk of an outbox: give --outbox FILE too" in lonely.lines[-1]
