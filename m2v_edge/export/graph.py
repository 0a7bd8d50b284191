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

import numpy as np
import onnx
from onnx import TensorProto, helper

from m2v_edge.bundle import ATTENTION_MASK, INPUT_IDS, OUTPUT, TableFile
from m2v_edge.export.graph_builder import GraphBuilder
from m2v_edge.export.graph_int4 import int4_weighted_sum

OPSET = 17
IR_VERSION = 8
"""IR 8 / opset 17: loadable by onnxruntime 1.14 and later (the issue asks for 1.17)."""


def build_graph(
    data: TableFile,
    *,
    dim: int,
    unk_id: int | None,
    normalize: bool,
    producer_version: str,
) -> onnx.ModelProto:
    """The pooling model of one variant whose arrays lie in the data file `data` (written first, by
    `m2v_edge.export.tables`), checked by onnx's checker. The graph holds only nodes and small constants."""
    g = GraphBuilder(data.file, data.arrays)
    ids, mask = INPUT_IDS, ATTENTION_MASK

    keep = g.op("Cast", [mask], "mask_f", to=TensorProto.FLOAT)
    if unk_id is not None:
        is_unk = g.op("Equal", [ids, g.const("unk_id", np.array(unk_id, dtype=np.int64))], "is_unk")
        keep = g.op("Where", [is_unk, g.const("zero", np.array(0.0, dtype=np.float32)), keep], "keep")
    rows = ids
    if "mapping" in data.arrays:
        rows = g.op("Gather", [g.array("mapping"), ids], "rows", axis=0)
    token_weight = keep
    if "weights" in data.arrays:
        gathered = g.op("Gather", [g.array("weights"), ids], "token_weights", axis=0)
        token_weight = g.op("Mul", [token_weight, gathered], "weighted_keep")
    if data.int4 is not None:
        summed = int4_weighted_sum(g, rows, token_weight, block_size=data.int4.block_size, dim=dim)
        axis1 = None
    else:
        if "scales" in data.arrays:
            scales = g.op("Gather", [g.array("scales"), rows], "row_scales", axis=0)
            token_weight = g.op("Mul", [token_weight, scales], "scaled_keep")
        vectors = g.op("Gather", [g.array("table"), rows], "vectors", axis=0)
        if data.arrays["table"].dtype != "float32":
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
    """Run onnx's checker on the graph with the data file's arrays declared as inputs instead of initializers.

    The checker serialises the model it checks (protobuf refuses more than 2 GiB) and wants external data files to
    exist already: without the arrays, neither their size nor the order of writing matters. Their types and shapes
    are still checked against the nodes that use them.
    """
    small = [tensor for tensor in g.initializers if tensor.name not in g.array_inputs]
    graph = helper.make_graph(
        g.nodes, "m2v_edge_pooling", inputs=[*inputs, *g.array_inputs.values()], outputs=outputs, initializer=small
    )
    onnx.checker.check_model(_model(graph, ""))
