"""The in-memory index behind offline search: an outbox's search vectors, scored exactly, kept up to date.

The first search of an outbox reads every live row's float16 search copy once (1.6 s for 100,000 rows, measured). A
search then screens all rows with an int8 copy of the matrix (onnxruntime's `MatMulInteger`: a quarter of the bytes
float32 would read, and reading them is what a search costs) and scores exactly, in float32 from the float16
copies, only the rows the screen cannot rule out: each row's int8 score comes with a bound on its error (below),
and a row is ruled out only when even its best possible score is below the worst possible score of the k-th best
row. The result is the exact top k over the search copies, whatever the int8 rounding; about 30 rows of 100,000
are scored exactly for a Debian query.

Error bound of a row v (scale s_v, codes v8, v = s_v v8 + e_v with |e_v| <= s_v / 2 per component) against the
query q (scale s_q, codes q8, q = s_q q8 + e_q likewise): v.q - s_v s_q v8.q8 = s_v v8.e_q + e_v.q, so
|v.q - s_v s_q v8.q8| <= s_q / 2 * s_v * sum|v8| + s_v / 2 * sum|q|; plus `NORM_SLACK` for the step from dot
product to cosine.

Before each search the index reads the outbox's change counter: when rows were written since, it reads only those
rows (`seq` greater than the last one seen). Rows can also vanish without a new change number (a tombstone dropped
after Milvus acknowledged the delete); the outbox's `purged` counter says when a tombstone the index never saw was
dropped, and the index is then read again in full, as it is after `reembed` (a new fingerprint).

One index per outbox file (by device and inode) is kept for the life of the process; it is safe to use from many
threads (each refresh-and-search holds the index's lock).
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

import numpy as np

from m2v_edge.errors import OutboxError
from m2v_edge.sync.outbox import Outbox

NORM_SLACK = 1e-3
"""Added to every error bound: the int8 scores are dot products, the exact scores cosines of float16 copies whose
norms are 1 within 5e-4, and |cosine| <= 1."""
_INDEXES: dict[tuple[int, int], OutboxIndex] = {}
_INDEXES_LOCK = threading.Lock()


def index_of(outbox: Outbox) -> OutboxIndex:
    """The shared index of `outbox`'s file, created empty on first use; `OutboxError` when the file is gone."""
    try:
        info = os.stat(outbox.path)
    except OSError as exc:
        raise OutboxError(f"cannot read outbox {outbox.path}: {exc.strerror}; was it moved or deleted? restart "
                          "m2v-edge serve with the outbox's path") from None
    key = (info.st_dev, info.st_ino)
    with _INDEXES_LOCK:
        index = _INDEXES.get(key)
        if index is None:
            index = _INDEXES[key] = OutboxIndex()
        return index


class OutboxIndex:
    """Search vectors of one outbox's live rows. Use `top`; it refreshes from the outbox first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._reset("", 0)

    def _reset(self, fingerprint: str, dim: int) -> None:
        self.fingerprint = fingerprint
        self.seq = -1
        self.ids: list[str | None] = []
        self.slots: dict[str, int] = {}
        self.free: list[int] = []
        self.half = np.zeros((0, dim), dtype=np.float16)
        """The search copies, one row per slot."""
        self.codes = np.zeros((0, dim), dtype=np.int8)
        self.scale = np.zeros(0, dtype=np.float32)
        """Per slot: half ~= scale * codes (0 for a zero row)."""
        self.l1 = np.zeros(0, dtype=np.float32)
        """Per slot: scale * sum(|codes|), for the error bound."""
        self.inverse_norm = np.zeros(0, dtype=np.float32)
        """Per slot: 1 / |half| (a normalised vector rounded to float16 is 1 within 5e-4), 0 for a zero row."""
        self.live = np.zeros(0, dtype=bool)

    def top(self, outbox: Outbox, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The `k` rows with the highest cosine to the L2-normalised `query`, best first (ties: by id)."""
        with self.lock:
            self.refresh(outbox)
            used = len(self.ids)
            live = self.live[:used]
            k = min(k, int(live.sum()))
            if k == 0:
                return []
            query = np.asarray(query, dtype=np.float32)
            candidates = self._screen(query, used, live, k)
            exact = (self.half[candidates].astype(np.float32) @ query) * self.inverse_norm[candidates]
            ranked = sorted(zip(exact.tolist(), candidates.tolist(), strict=True),
                            key=lambda pair: (-pair[0], self.ids[pair[1]]))
            return [(str(self.ids[slot]), score) for score, slot in ranked[:k]]

    def _screen(self, query: np.ndarray, used: int, live: np.ndarray, k: int) -> np.ndarray:
        """Slots that may be among the `k` best: all rows whose int8 score plus its error bound reaches the lowest
        exact score the k-th best int8 row can have."""
        query_scale = float(np.abs(query).max()) / 127
        codes = np.round(query / query_scale).astype(np.int8)[:, None]
        dots = _matmul_integer()(None, {"rows": self.codes[:used], "query": codes})[0][:, 0]
        scale = self.scale[:used]
        approx = dots * (scale * query_scale)
        bound = 0.5 * (query_scale * self.l1[:used] + scale * float(np.abs(query).sum())) + NORM_SLACK
        approx[~live] = -np.inf
        best = np.argpartition(-approx, k - 1)[:k]
        floor = float(np.min(approx[best] - bound[best]))
        return np.flatnonzero((approx + bound >= floor) & live)

    def refresh(self, outbox: Outbox) -> None:
        """Bring the index up to date with `outbox` (reads only what changed since the last refresh); `OutboxError`
        when the outbox was moved to another model since `outbox` was opened."""
        db = outbox.db
        db.execute("BEGIN")  # one snapshot for the counters and the rows
        try:
            meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('seq', 'purged', 'fingerprint', 'dim')"))
            outbox.check_model_unchanged()  # the query was embedded with the model of the handle
            seq, purged, dim = int(meta["seq"]), int(meta.get("purged", 0)), int(meta["dim"])
            if meta["fingerprint"] != self.fingerprint or self.half.shape[1] != dim or purged > self.seq:
                self._reset(meta["fingerprint"], dim)
            if seq == self.seq:
                return
            rows = db.execute(
                "SELECT id, search FROM docs WHERE state IN ('pending', 'synced', 'rejected', 'deleted-pending')"
                " AND seq > ?",
                (self.seq,),
            ).fetchall()
        finally:
            db.execute("COMMIT")
        if self.seq < 0:
            self._load([row for row in rows if row[1] is not None])
        else:
            for doc_id, blob in rows:
                if blob is None:
                    self._remove(doc_id)
                else:
                    self._set(doc_id, np.frombuffer(blob, dtype="<f2"))
        self.seq = seq

    def _load(self, rows: list[tuple[str, bytes]]) -> None:
        dim = self.half.shape[1]
        self.ids = [doc_id for doc_id, _ in rows]
        self.slots = {doc_id: slot for slot, doc_id in enumerate(self.ids)}
        self.half = np.frombuffer(b"".join(blob for _, blob in rows), dtype="<f2").reshape(len(rows), dim).copy()
        self.codes = np.zeros((len(rows), dim), dtype=np.int8)
        self.scale = np.zeros(len(rows), dtype=np.float32)
        self.l1 = np.zeros(len(rows), dtype=np.float32)
        self.inverse_norm = np.zeros(len(rows), dtype=np.float32)
        self.live = np.ones(len(rows), dtype=bool)
        for start in range(0, len(rows), 8192):  # in chunks: a float32 copy of everything would double the memory
            self._quantize(slice(start, start + 8192))

    def _quantize(self, slots: slice) -> None:
        rows = self.half[slots].astype(np.float32)
        scale = np.abs(rows).max(axis=1) / 127
        codes = np.round(rows / np.where(scale > 0, scale, 1)[:, None]).astype(np.int8)
        self.codes[slots], self.scale[slots] = codes, scale
        self.l1[slots] = scale * np.abs(codes.astype(np.float32)).sum(axis=1)
        norms = np.linalg.norm(rows, axis=1)
        self.inverse_norm[slots] = np.divide(1, norms, out=np.zeros_like(norms), where=norms > 0)

    def _set(self, doc_id: str, vector: np.ndarray) -> None:
        slot = self.slots.get(doc_id)
        if slot is None:
            slot = self.free.pop() if self.free else self._append()
            self.ids[slot] = doc_id
            self.slots[doc_id] = slot
        self.half[slot] = vector
        self._quantize(slice(slot, slot + 1))
        self.live[slot] = True

    def _append(self) -> int:
        slot = len(self.ids)
        if slot == len(self.half):  # grow by half, so that one row at a time stays cheap
            size = max(16, slot + slot // 2)
            self.half, self.codes = _grown(self.half, size), _grown(self.codes, size)
            self.scale, self.l1 = _grown(self.scale, size), _grown(self.l1, size)
            self.inverse_norm, self.live = _grown(self.inverse_norm, size), _grown(self.live, size)
        self.ids.append(None)
        return slot

    def _remove(self, doc_id: str) -> None:
        slot = self.slots.pop(doc_id, None)
        if slot is not None:
            self.ids[slot] = None
            self.live[slot] = False
            self.free.append(slot)


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    grown = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


SCREEN_MODEL = (
    b'\x08\x05\x12\x08m2v-edge:}\n"\n\x04rows\n\x05query\x12\x04dots"\rMatMulInteger\x12\x06screenZ\x1a\n\x04rows'
    b'\x12\x12\n\x10\x08\x03\x12\x0c\n\x03\x12\x01n\n\x05\x12\x03dimZ\x1a\n\x05query\x12\x11\n\x0f\x08\x03\x12\x0b\n\x05'
    b'\x12\x03dim\n\x02\x08\x01b\x17\n\x04dots\x12\x0f\n\r\x08\x06\x12\t\n\x03\x12\x01n\n\x02\x08\x01B\x04\n\x00\x10\n'
)
"""The ONNX model (IR 5, opset 10) of one `MatMulInteger` node: dots int32 [n, 1] = rows int8 [n, dim] x query int8
[dim, 1]. Serialised here because the `onnx` package is not a runtime dependency; a test rebuilds it with `onnx`."""


@functools.lru_cache(maxsize=1)
def _matmul_integer() -> Any:
    """`run` of an onnxruntime session of `SCREEN_MODEL` (one thread: the product is bound by memory, and a second
    thread would only compete with the caller's)."""
    import onnxruntime as ort  # here: the outbox and sync never need it; search embeds with it anyway

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(SCREEN_MODEL, options, providers=["CPUExecutionProvider"]).run
