"""The pooling graph: gather token rows, weighted masked mean, optional L2 normalisation.

Inputs `input_ids` and `attention_mask` (int64, [batch, sequence]); output `embeddings` (float32, [batch, dim]).
Per row::

    keep[t]   = attention_mask[t] != 0 and input_ids[t] != unk_id
    row(t)    = mapping[input_ids[t]] if mapping else input_ids[t]
    w[t]      = keep[t] * weights[input_ids[t]] (if weights) * scale[row(t)] (int8; int4: one per block)
    sum       = w @ table[row(t)]
    embedding = sum / (||sum|| + 1e-32) if normalize else sum / max(sum(keep), 1)   # zero when nothing is kept

The weighted sum is one batched MatMul ([batch, 1, seq] x [batch, seq, dim]), so dequantisation and
weights cost one multiply per token instead of one per table value. int4 tables (one scale per block of
columns) are summed block by block, see `m2v_edge.export.graph_int4`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from m2v_edge.bundle import ATTENTION_MASK, INPUT_IDS, OUTPUT
from m2v_edge.export.graph_builder import GraphBuilder
from m2v_edge.export.graph_int4 import int4_weighted_sum
from m2v_edge.export.quantize import StoredTable

OPSET = 17
IR_VERSION = 8
"""IR 8 / opset 17: loadable by onnxruntime 1.14 and later (the issue asks for 1.17)."""
_WRITE_BLOCK_BYTES = 64 << 20
"""`write_table` converts and writes at most this many bytes of a table at a time."""


def build_graph(
    table: StoredTable,
    *,
    weights: np.ndarray | None,
    mapping: np.ndarray | None,
    unk_id: int | None,
    normalize: bool,
    producer_version: str,
    table_file: str | None = None,
) -> onnx.ModelProto:
    """The pooling model for one variant's stored table, checked by onnx's checker.

    With `table_file`, the table is ONNX external data in that file (beside the graph), which the caller writes with
    `write_table(table.values, path)`; otherwise the graph holds it (up to protobuf's 2 GiB).
    """
    g = GraphBuilder(table_file)
    dim = table.columns
    ids, mask = INPUT_IDS, ATTENTION_MASK

    keep = g.op("Cast", [mask], "mask_f", to=TensorProto.FLOAT)
    if unk_id is not None:
        is_unk = g.op("Equal", [ids, g.const("unk_id", np.array(unk_id, dtype=np.int64))], "is_unk")
        keep = g.op("Where", [is_unk, g.const("zero", np.array(0.0, dtype=np.float32)), keep], "keep")
    rows = ids
    if mapping is not None:
        rows = g.op("Gather", [g.const("mapping", mapping.astype(np.int64)), ids], "rows", axis=0)
    token_weight = keep
    if weights is not None:
        gathered = g.op("Gather", [g.const("weights", weights.astype(np.float32)), ids], "token_weights", axis=0)
        token_weight = g.op("Mul", [token_weight, gathered], "weighted_keep")
    if table.block_size is not None:
        summed = int4_weighted_sum(g, table, rows, token_weight)
        axis1 = None
    else:
        if table.scales is not None:
            scales = g.op("Gather", [g.const("scales", table.scales.astype(np.float32)), rows], "row_scales", axis=0)
            token_weight = g.op("Mul", [token_weight, scales], "scaled_keep")
        vectors = g.op("Gather", [g.table("table", table.values), rows], "vectors", axis=0)
        if table.values.dtype != np.float32:
            vectors = g.op("Cast", [vectors], "vectors_f", to=TensorProto.FLOAT)
        axis1 = g.const("axis1", np.array([1], dtype=np.int64))
        row_weights = g.op("Unsqueeze", [token_weight, axis1], "row_weights")
        summed = g.op("Squeeze", [g.op("MatMul", [row_weights, vectors], "summed_3d"), axis1], "summed")
    if normalize:
        # The mean's direction is the sum's: dividing by the token count first would only cost nodes.
        norm = g.op("ReduceL2", [summed], "norm", axes=[1], keepdims=1)
        eps = g.const("eps", np.array(1e-32, dtype=np.float32))
        g.op("Div", [summed, g.op("Add", [norm, eps], "norm_eps")], OUTPUT)
    else:
        axis1 = axis1 or g.const("axis1", np.array([1], dtype=np.int64))
        count = g.op("ReduceSum", [keep, axis1], "count", keepdims=1)
        divisor = g.op("Max", [count, g.const("one", np.array(1.0, dtype=np.float32))], "divisor")
        g.op("Div", [summed, divisor], OUTPUT)

    inputs = [
        helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "sequence"]),
    ]
    outputs = [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", dim])]
    _check(g, inputs, outputs)
    graph = helper.make_graph(g.nodes, "m2v_edge_pooling", inputs=inputs, outputs=outputs, initializer=g.initializers)
    return _model(graph, producer_version)


def _model(graph: onnx.GraphProto, producer_version: str) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="m2v-edge",
        producer_version=producer_version,
    )
    model.ir_version = IR_VERSION
    return model


def _check(g: GraphBuilder, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]) -> None:
    """Run onnx's checker on the graph with its token table declared as an input instead of an initializer.

    The checker serialises the model it checks (protobuf refuses more than 2 GiB) and wants external data files to
    exist already: without the table, neither a large table nor the order of writing matters. The table's type
    and shape are still checked against the nodes that use it.
    """
    assert g.table_input is not None, "every pooling graph gathers from a token table"
    others = [tensor for tensor in g.initializers if tensor.name != g.table_input.name]
    graph = helper.make_graph(
        g.nodes, "m2v_edge_pooling", inputs=[*inputs, g.table_input], outputs=outputs, initializer=others
    )
    onnx.checker.check_model(_model(graph, ""))


def write_table(values: np.ndarray, path: Path) -> None:
    """Write a table's values as ONNX external data (row-major, little-endian), a block of rows at a time, so that
    a large table is never copied whole."""
    little_endian = values.dtype.newbyteorder("<")
    row_bytes = max(1, values.itemsize * int(np.prod(values.shape[1:])))
    block = max(1, _WRITE_BLOCK_BYTES // row_bytes)
    with open(path, "wb") as handle:
        for start in range(0, values.shape[0], block):
            handle.write(np.ascontiguousarray(values[start : start + block], dtype=little_endian).data)
