"""Offline search (`search_outbox`, `m2v-edge search --outbox`): exact cosine over the outbox's own vectors, kept up
to date as the outbox changes, with no Milvus anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from m2v_edge.errors import OutboxError, ZeroVectorQueryError
from m2v_edge.sync import Outbox, search_outbox

from .conftest import KIOSK, N_DOCS, assert_agrees, numpy_ranking, run_cli


def exact_vectors(outbox: Outbox) -> dict[str, np.ndarray]:
    """The exact float32 vectors of a freshly ingested (all pending) outbox."""
    return {r.id: r.vector for r in outbox.pending(limit=N_DOCS * 2, max_bytes=1 << 40, up_to=outbox.high_water())}


def test_offline_search_agrees_with_an_exact_numpy_cosine_ranking(outbox5000: Path, embedder, debian_records) -> None:
    with Outbox.open(outbox5000) as outbox:
        exact = exact_vectors(outbox)
        copies = outbox.vectors()
        for record in debian_records[:N_DOCS:500]:
            query = record.metadata["synopsis"]
            hits = search_outbox(outbox, embedder, query, k=10)
            vector = embedder.encode([query])[0]
            assert_agrees(hits, numpy_ranking(exact, vector), 10, tolerance=2e-4)
            assert [h.doc_id for h in hits] == [i for i, _ in numpy_ranking(copies, vector)[:10]], \
                "exactly the NumPy ranking of the search copies"
            assert all(h.kiosk_id == KIOSK for h in hits)
            top = hits[0]
            assert (top.text, top.metadata) == next((r.text, r.metadata) for r in debian_records if r.id == top.doc_id)


def test_the_index_follows_writes_deletes_and_dropped_tombstones(outbox5000: Path, embedder) -> None:
    query = "a fast text editor for programmers"
    with Outbox.open(outbox5000) as outbox, Outbox.open(outbox5000) as other:
        before = search_outbox(outbox, embedder, query, k=3)
        other.put([("new-doc", query, {"fresh": True})], embedder.encode([query]))  # another connection writes
        hits = search_outbox(outbox, embedder, query, k=3)
        assert hits[0].doc_id == "new-doc" and hits[0].score > 0.999 and hits[0].metadata == {"fresh": True}
        assert [h.doc_id for h in hits[1:]] == [h.doc_id for h in before[:2]]
        other.delete(["new-doc", before[0].doc_id])
        assert [h.doc_id for h in search_outbox(outbox, embedder, query, k=1)] == [before[1].doc_id]
        # a tombstone written and dropped (synced) between two searches leaves no trace but the purge counter
        other.delete([before[1].doc_id])
        assert other.mark_deleted(other.tombstones(limit=10, up_to=other.high_water())) == 3
        assert [h.doc_id for h in search_outbox(str(outbox5000), embedder, query, k=1)] == [before[2].doc_id]
        assert len(search_outbox(outbox, embedder, query, k=N_DOCS + 10)) == N_DOCS + 1 - 3


def test_kiosk_filter_zero_query_and_the_model_guard(outbox5000: Path, embedder, potion_bundle: Path) -> None:
    from m2v_edge.runtime import EdgeEmbedder

    assert search_outbox(outbox5000, embedder, "editor", k=3, kiosk="another-kiosk") == []
    assert len(search_outbox(outbox5000, embedder, "editor", k=3, kiosk=KIOSK)) == 3
    with pytest.raises(ZeroVectorQueryError) as info:
        search_outbox(outbox5000, embedder, "สวัสดีครับ")
    assert "no meaningful hits for this query" in str(info.value)
    assert "does not cover Thai: use a multilingual model" in str(info.value)
    with pytest.raises(OutboxError, match="holds vectors of model .*:fp32:.*, not .*:int8:"):
        search_outbox(outbox5000, EdgeEmbedder(potion_bundle, variant="int8"), "editor")
    with pytest.raises(ValueError, match="k must be >= 1"):
        search_outbox(outbox5000, embedder, "editor", k=0)


def test_search_command_offline(outbox5000: Path, potion_bundle: Path, debian_records) -> None:
    wanted = debian_records[7]
    base = ("search", "--bundle", str(potion_bundle), "--outbox", str(outbox5000))  # no --variant: the outbox's
    found = run_cli(*base, "-k", "5", "--json", wanted.metadata["synopsis"])
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    assert list(result) == ["hits"] and len(result["hits"]) == 5
    assert set(result["hits"][0]) == {"rank", "doc_id", "kiosk_id", "score", "text", "metadata"}
    assert wanted.id in [hit["doc_id"] for hit in result["hits"]]
    plain = run_cli(*base, "-k", "2", wanted.metadata["synopsis"])
    assert plain.returncode == 0 and plain.stdout.startswith("  1. ") and len(plain.stdout.splitlines()) == 2
    zero = run_cli(*base, "😀")
    assert zero.returncode == 2 and zero.stdout == ""
    assert "m2v-edge search: error: no meaningful hits for this query: 1 text gave zero vectors" in zero.stderr


def test_the_screen_model_is_one_matmul_integer_node() -> None:
    """The serialised graph in `offline_index` is what `onnx` builds for int32 = int8 rows x int8 query, and scores
    like NumPy."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from m2v_edge.sync.offline_index import SCREEN_MODEL

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["rows", "query"], ["dots"])], "screen",
        [helper.make_tensor_value_info("rows", TensorProto.INT8, ["n", "dim"]),
         helper.make_tensor_value_info("query", TensorProto.INT8, ["dim", 1])],
        [helper.make_tensor_value_info("dots", TensorProto.INT32, ["n", 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 10)], producer_name="m2v-edge")
    model.ir_version = 5
    onnx.checker.check_model(model)
    assert model.SerializeToString() == SCREEN_MODEL
    rng = np.random.default_rng(7)
    rows = rng.integers(-127, 128, (50, 256), dtype=np.int8)
    query = rng.integers(-127, 128, (256, 1), dtype=np.int8)
    (dots,) = ort.InferenceSession(SCREEN_MODEL, providers=["CPUExecutionProvider"]).run(None, {"rows": rows,
                                                                                               "query": query})
    np.testing.assert_array_equal(dots, rows.astype(np.int32) @ query.astype(np.int32))


def test_the_int8_screen_keeps_every_row_that_can_be_in_the_top_k(tmp_path: Path, embedder, debian_records) -> None:
    """Near-duplicates (scores closer than int8 rounding) and zero vectors: the top k is the float16 copies' exact
    top k, never a row the int8 scores put first by rounding."""
    rng = np.random.default_rng(3)
    base = embedder.encode([r.text for r in debian_records[:300]])
    vectors = np.concatenate([base, base + rng.standard_normal(base.shape).astype(np.float32) * 1e-3,
                              np.zeros((20, embedder.dim), np.float32)])
    ids = [f"d{i}" for i in range(len(vectors))]
    with Outbox.create(tmp_path / "o.db", fingerprint=embedder.fingerprint, dim=embedder.dim) as outbox:
        outbox.put([(i, "t", {}) for i in ids], vectors)
        copies = outbox.vectors()
        for record in debian_records[:300:15]:
            query = record.metadata["synopsis"]
            hits = search_outbox(outbox, embedder, query, k=20)
            ranking = numpy_ranking(copies, embedder.encode([query])[0])
            assert [h.doc_id for h in hits] == [i for i, _ in ranking[:20]]
            np.testing.assert_allclose([h.score for h in hits], [s for _, s in ranking[:20]], atol=1e-6)


def test_an_outbox_file_removed_while_open_is_an_outbox_error(tmp_path: Path, embedder) -> None:
    """serve keeps its outbox open; a file deleted or moved under it gives OutboxError (503), not a crash (500)."""
    path = tmp_path / "o.db"
    with Outbox.create(path, fingerprint=embedder.fingerprint, dim=embedder.dim) as outbox:
        outbox.put([("d0", "vim is a text editor", {})], embedder.encode(["vim is a text editor"]))
        path.rename(tmp_path / "moved.db")
        with pytest.raises(OutboxError, match=f"cannot read outbox {path}: .*was it moved or deleted"):
            search_outbox(outbox, embedder, "editor", k=1)
