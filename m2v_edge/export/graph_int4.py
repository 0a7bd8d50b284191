"""The int4 part of the pooling graph: the weighted sum of 4-bit token rows, with standard operators only.

The table is stored as `m2v_edge.export.quantize.quantize_int4` packs it: per row, `blocks` blocks of
`block` columns, byte j of block k holding code j (low nibble) and code block/2 + j (high nibble), each code
being q + 8 with q in [-7, 7]; one float16 scale per row and block. For a batch ([b, s] rows, [b, s] weights)::

    x     = Transpose(Gather(packed, rows) as [b, s, blocks, half])         # [blocks, b, s, half] uint8
    y     = DequantizeLinear(x, 1/16, 136) = q_hi + q_lo / 16               # exact: multiples of 1/16, |q_lo| <= 7
    q_hi  = Round(y);  q_lo / 16 = y - q_hi                                  # exact, because |q_lo / 16| < 1/2
    w     = token weight * scale[row, block]                                 # [blocks, b, 1, s]
    sum   = [16 * (w @ (q_lo / 16)), w @ q_hi] per block, back to [b, dim]

The scales multiply the [b, s] token weights, not the gathered values: per table value the graph does one gather
of half a byte, one byte transpose, a dequantize, a round, a subtract and two half-width MatMuls. Only standard
operators at opset 13 or lower (DequantizeLinear with a scalar scale and zero point, Round, BitShift-free), so
it loads on onnxruntime 1.17 (checked with 1.17.3: same vectors as 1.32 to 9e-8). onnxruntime's
`GatherBlockQuantized` (com.microsoft) decodes the same codes 1.15x to 1.55x faster on onnxruntime 1.32 but is
not registered in 1.17.3, so it is not used (`python -m bench.quality_report` measures both).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from m2v_edge.export.graph_builder import GraphBuilder


def int4_weighted_sum(g: GraphBuilder, rows: str, token_weight: str, *, block_size: int, dim: int) -> str:
    """Add the nodes computing sum_t token_weight[t] * dequantized(table[rows[t]]) from the data file's int4
    `table` and `scales` (blocks of `block_size` columns, the first `dim` kept); return its name ([b, dim])."""
    blocks, block = g.arrays["scales"].shape[1], block_size
    half = block // 2
    packed = g.op("Gather", [g.array("table"), rows], "int4_bytes", axis=0)
    shape4 = g.const("int4_block_shape", np.array([0, 0, blocks, half], dtype=np.int64))
    by_block = g.op("Reshape", [packed, shape4], "int4_bytes_by_block")
    x = g.op("Transpose", [by_block], "int4_bytes_block_major", perm=[2, 0, 1, 3])

    scales = g.op("Gather", [g.array("scales"), rows], "int4_row_scales", axis=0)
    scales = g.op("Transpose", [scales], "int4_scales_block_major", perm=[2, 0, 1])
    scales = g.op("Cast", [scales], "int4_scales_f", to=TensorProto.FLOAT)
    weights = g.op("Mul", [scales, token_weight], "int4_block_weights")
    axis2 = g.const("int4_axis2", np.array([2], dtype=np.int64))
    weights = g.op("Unsqueeze", [weights, axis2], "int4_block_weights_row")  # [blocks, b, 1, s]

    sixteenth = g.const("int4_sixteenth", np.array(1 / 16, dtype=np.float32))
    offset = g.const("int4_offset", np.array(8 * 16 + 8, dtype=np.uint8))
    y = g.op("DequantizeLinear", [x, sixteenth, offset], "int4_y")
    high = g.op("Round", [y], "int4_high")
    low_16th = g.op("Sub", [y, high], "int4_low_16th")
    sum_high = g.op("MatMul", [weights, high], "int4_sum_high")
    sum_low = g.op("MatMul", [weights, low_16th], "int4_sum_low_16th")
    sum_low = g.op("Mul", [sum_low, g.const("int4_sixteen", np.array(16.0, dtype=np.float32))], "int4_sum_low")

    both = g.op("Concat", [sum_low, sum_high], "int4_sum_blocks", axis=3)  # [blocks, b, 1, block]
    both = g.op("Squeeze", [both, axis2], "int4_sum_blocks_3d")
    both = g.op("Transpose", [both], "int4_sum_batch_major", perm=[1, 0, 2])
    shape2 = g.const("int4_flat_shape", np.array([0, blocks * block], dtype=np.int64))
    summed = g.op("Reshape", [both, shape2], "int4_summed_padded")
    if blocks * block == dim:
        return summed
    axis1 = g.const("int4_axis1", np.array([1], dtype=np.int64))
    start = g.const("int4_slice_start", np.array([0], dtype=np.int64))
    stop = g.const("int4_slice_stop", np.array([dim], dtype=np.int64))
    return g.op("Slice", [summed, start, stop, axis1], "int4_summed")
