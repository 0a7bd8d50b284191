"""The builder both pooling graph kinds use: nodes, small constants and the token table as external data."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class GraphBuilder:
    """Accumulates the nodes and initializers of a pooling graph (`m2v_edge.export.graph` and `graph_int4`)."""

    def __init__(self, table_file: str | None) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.table_file = table_file
        self.table_input: onnx.ValueInfoProto | None = None
        """The token table's name, type and shape, to check the graph without it (`m2v_edge.export.graph`)."""

    def const(self, name: str, value: np.ndarray) -> str:
        """A constant held in the graph; returns its name."""
        self.initializers.append(numpy_helper.from_array(value, name=name))
        return name

    def table(self, name: str, values: np.ndarray) -> str:
        """The token table: held in the graph, or with `table_file` only referred to as ONNX external data (the
        whole file, offset 0, written by `write_table`), so that its values are never copied into the graph."""
        if self.table_file is None:
            tensor = numpy_helper.from_array(values, name=name)
        else:
            dtype = helper.np_dtype_to_tensor_dtype(values.dtype)
            tensor = TensorProto(name=name, data_type=dtype, dims=values.shape, data_location=TensorProto.EXTERNAL)
            for key, value in (("location", self.table_file), ("offset", "0"), ("length", str(values.nbytes))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
        self.initializers.append(tensor)
        self.table_input = helper.make_tensor_value_info(name, tensor.data_type, list(values.shape))
        return name

    def op(self, op_type: str, inputs: list[str], output: str, **attrs: object) -> str:
        """A node with one output, named after it; returns the output's name."""
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output
