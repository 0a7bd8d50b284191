"""Table precisions for the bundle variants: fp32, fp16, per-row symmetric int8 and block-wise symmetric int4."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_FP16_MAX = float(np.finfo(np.float16).max)
_FP16_TINY = float(np.finfo(np.float16).smallest_subnormal)

INT8_BLOCK_VALUES = 1 << 22
"""int8 quantisation converts at most this many table values (16 MiB of float32) at a time."""
INT4_BLOCK_SIZE = 64
"""Values per int4 scale along the embedding dim, chosen by measurement (`python -m bench.quality_report` on
potion-base-8M): the smallest block (closest to fp32) whose one-variant bundle stays within 15% of the float32
table's bytes: graph 13.3%, with tokenizer, manifest and licence 14.97%; 32 gives 14.1% / 15.75% for mean cosine
to fp32 0.9971 instead of 0.9964. nDCG@10 does not depend on it (0.6817 to 0.6840 from 16 to 256, fp32 0.6804)."""
INT4_LEVELS = 7
"""Codes are q in [-INT4_LEVELS, INT4_LEVELS] (15 levels), stored as the nibble q + 8; -8 is never used, which
lets the graph split a byte into its two nibbles with one Round (see `m2v_edge.export.graph_int4`)."""
INT4_DIVISORS = tuple(7.0 + step / 10 for step in range(31))
"""Candidate scales per block are max|x| / d for these d; the one with the least squared error is kept
(d = 7 maps the largest value to 7 exactly; larger d trade clipping of outliers for finer steps)."""
INT4_CHUNK_VALUES = 1 << 18
"""`int4_codes` tries the divisors on at most this many values at a time (1 MiB of float32: the trials stay in
the CPU's cache instead of streaming a whole table through memory 31 times)."""


@dataclass(frozen=True)
class StoredTable:
    """A table as a variant stores it.

    fp32/fp16: `values` is the table. int8: `values` [rows, dim] int8 and `scales` [rows] float32 (one per row).
    int4: `values` [rows, blocks * block_size / 2] uint8 (two codes a byte, see `int4_layout`), `scales`
    [rows, blocks] float16 (one per block), `block_size` and `dim` (the table's dim before any padding).
    """

    values: np.ndarray
    scales: np.ndarray | None = None
    block_size: int | None = None
    dim: int | None = None

    @property
    def columns(self) -> int:
        """The number of dimensions of the vectors this table gives."""
        return int(self.dim if self.dim is not None else self.values.shape[1])


def quantize_table(table: np.ndarray, variant: str) -> StoredTable:
    """Convert a source table (float32/16/64 or int8) to the storage of `variant`."""
    if variant == "fp32":
        return StoredTable(np.asarray(table, dtype=np.float32))  # a float32 table is not copied
    if variant == "fp16":
        return StoredTable(np.clip(table.astype(np.float32), -_FP16_MAX, _FP16_MAX).astype(np.float16))
    if variant == "int8":
        return _int8_per_row(table)
    if variant == "int4":
        return quantize_int4(table)
    raise ValueError(f"unknown variant {variant!r}")


def _int8_per_row(table: np.ndarray) -> StoredTable:
    """Symmetric per-row int8: row ~= values * scale, with max |row| mapped to 127.

    Computed a block of rows at a time, so that a large table needs no float32 temporaries of its own size.
    An int8 source table is kept as it is (scale 1): its raw integers are what model2vec averages.
    """
    if table.dtype == np.int8:
        return StoredTable(table.copy(), np.ones(table.shape[0], dtype=np.float32))
    values = np.empty(table.shape, dtype=np.int8)
    scales = np.empty(table.shape[0], dtype=np.float32)
    step = max(1, INT8_BLOCK_VALUES // max(1, table.shape[1]))
    for start in range(0, table.shape[0], step):
        rows = table[start : start + step].astype(np.float32)
        peak = np.abs(rows).max(axis=1)
        block_scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        values[start : start + step] = np.clip(np.rint(rows / block_scales[:, None]), -127, 127)
        scales[start : start + step] = block_scales
    return StoredTable(values, scales)


def int4_layout(dim: int, block_size: int = INT4_BLOCK_SIZE) -> tuple[int, int]:
    """(blocks, block) for a table of `dim` columns: ceil(dim / block_size) blocks of one even size.

    The block is `block_size` when it divides `dim` (256, 128, 64 with 64); otherwise the blocks are evened
    out (dim 100 -> 2 blocks of 50, dim 24 -> 1 block of 24) so that at most one column per block is padding.
    """
    if dim < 1 or block_size < 2 or block_size % 2:
        raise ValueError(f"int4 needs dim >= 1 and an even block size >= 2, got dim {dim}, block {block_size}")
    blocks = -(-dim // block_size)
    block = 2 * -(-dim // (2 * blocks))
    return blocks, block


def int4_codes(table: np.ndarray, block_size: int = INT4_BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Block-wise symmetric 4-bit quantisation: codes q [rows, blocks, block] int8 in [-7, 7] and float16 scales
    [rows, blocks], with table[r, k * block + j] ~= q[r, k, j] * scales[r, k] (padding columns are 0).

    Each block's scale is the float16 value of max|x| / d for the d of `INT4_DIVISORS` with the least squared
    error (ties: the smallest d), clamped to float16's range; a block of zeros gets scale 0. Rows are quantised
    `INT4_CHUNK_VALUES` values at a time, so that the 31 trials run in the CPU's cache.
    """
    rows, dim = table.shape
    blocks, block = int4_layout(dim, block_size)
    codes = np.empty((rows, blocks, block), dtype=np.int8)
    scales = np.empty((rows, blocks), dtype=np.float16)
    step = max(1, INT4_CHUNK_VALUES // (blocks * block))
    for start in range(0, rows, step):
        codes[start : start + step], scales[start : start + step] = _int4_chunk(table[start : start + step], block)
    return codes, scales


def _int4_chunk(table: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """`int4_codes` of a few rows.

    The squared error of every trial is first summed with `np.einsum` (3x faster than `np.add.reduce`, in another
    order, so its float32 rounding differs). Where the best trial beats every other by more than `_CERTAIN` of its
    error, far beyond what rounding 64 terms can change (about 8e-6 between two orders), it is the best trial of
    numpy's own sums too; only the other blocks (near ties, zeros, non-finite values) are tried again with
    `np.add.reduce`, as `_best_scales` does. The result is the same, bit for bit.
    """
    rows, dim = table.shape
    blocks = -(-dim // block)
    x = np.zeros((rows, blocks * block), dtype=np.float32)
    x[:, :dim] = table
    x = x.reshape(rows, blocks, block)
    peak = np.abs(x).max(axis=2)
    scales = _trial_scales(peak)
    errors = np.empty(scales.shape, dtype=np.float32)
    trial, divisors = np.empty_like(x), np.empty_like(x)
    for k, scale in enumerate(scales):
        _squared_errors(x, scale, divisors, trial)
        _sum_of_squares(trial, out=errors[k])
    best = np.argmin(errors, axis=0)
    best_error = np.take_along_axis(errors, best[None], axis=0)[0]
    np.put_along_axis(errors, best[None], np.inf, axis=0)
    margin = errors.min(axis=0) - best_error
    certain = np.isfinite(best_error) & (best_error > _TINY_ERROR) & (margin > _CERTAIN * best_error)
    best_scale = np.take_along_axis(scales, best[None], axis=0)[0]
    if not certain.all():
        unsure = np.nonzero(~certain)
        best_scale[unsure] = _best_scales(x[unsure][:, None, :], peak[unsure][:, None])[:, 0]
    _codes(x, best_scale, divisors, out=trial)
    trial[best_scale == 0] = 0  # a zero block, or one no trial improved on (non-finite values)
    return trial.astype(np.int8), best_scale


_CERTAIN = 3e-5
"""A best trial whose error is smaller than every other's by more than this fraction is the best whatever the
order of summation (float32 sums of 64 non-negative terms are within 4e-6 of the exact sum)."""
_TINY_ERROR = 1e-30
"""Below this, squared errors may be subnormal numbers, whose rounding is not relative: such blocks are summed again."""


def _sum_of_squares(values: np.ndarray, out: np.ndarray) -> None:
    """The sum of squares over the last axis, fast and in no particular order."""
    np.einsum("rbj,rbj->rb", values, values, out=out)


def _trial_scales(peak: np.ndarray) -> np.ndarray:
    """The float16 scale of every divisor for every block [divisors, rows, blocks]: max|x| / d clamped to float16's
    range, 0 for a block of zeros."""
    scales = np.empty((len(INT4_DIVISORS), *peak.shape), dtype=np.float16)
    for k, divisor in enumerate(INT4_DIVISORS):
        scale = np.clip(peak / np.float32(divisor), _FP16_TINY, _FP16_MAX).astype(np.float16)
        scales[k] = np.where(peak > 0, scale, np.float16(0))
    return scales


def _best_scales(x: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """The scale of the trial with the least squared error per block, the errors summed by `np.add.reduce` (the
    first of equal errors wins)."""
    best_err = np.full(peak.shape, np.inf, dtype=np.float32)
    best_scale = np.zeros(peak.shape, dtype=np.float16)
    trial, divisors, err = np.empty_like(x), np.empty_like(x), np.empty_like(best_err)
    for scale in _trial_scales(peak):
        _squared_errors(x, scale, divisors, trial)
        np.add.reduce(np.square(trial, out=trial), axis=2, out=err)
        better = err < best_err
        np.copyto(best_err, err, where=better)
        np.copyto(best_scale, scale, where=better)
    return best_scale


def _squared_errors(x: np.ndarray, scale: np.ndarray, divisors: np.ndarray, out: np.ndarray) -> None:
    """The dequantised values minus `x`, into `out`. Multiplying by `divisors` (a zero scale replaced by 1) gives
    what multiplying by the scale would: a block with scale 0 holds only zeros (or NaN, which stays NaN)."""
    _codes(x, scale, divisors, out=out)
    np.multiply(out, divisors, out=out)
    np.subtract(out, x, out=out)


def _codes(x: np.ndarray, scale: np.ndarray, divisors: np.ndarray, out: np.ndarray) -> None:
    """q = clip(rint(x / scale), -7, 7) per block into `out`; `divisors` gets each value's scale as float32, a zero
    scale replaced by 1 (a zero block stays zero whatever the divisor). Dividing by a full array rather than a
    broadcast one is twice as fast."""
    wide = scale.astype(np.float32)
    np.copyto(divisors, np.where(wide > 0, wide, np.float32(1))[..., None])
    np.divide(x, divisors, out=out)
    np.clip(np.rint(out, out=out), -INT4_LEVELS, INT4_LEVELS, out=out)


def pack_int4(codes: np.ndarray) -> np.ndarray:
    """Pack codes [rows, blocks, block] into bytes [rows, blocks * block / 2]: in block k, byte j holds
    code j + 8 in its low nibble and code block/2 + j + 8 in its high nibble."""
    half = codes.shape[2] // 2
    nibbles = (codes.astype(np.int16) + 8).astype(np.uint8)
    packed = nibbles[:, :, :half] | (nibbles[:, :, half:] << 4)
    return np.ascontiguousarray(packed.reshape(codes.shape[0], -1))


def quantize_int4(table: np.ndarray, block_size: int = INT4_BLOCK_SIZE) -> StoredTable:
    """The int4 storage of a source table (see `int4_codes` and `pack_int4`)."""
    codes, scales = int4_codes(table, block_size)
    return StoredTable(pack_int4(codes), scales, block_size=codes.shape[2], dim=int(table.shape[1]))
