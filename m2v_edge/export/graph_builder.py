"""The builder both pooling graph kinds use: nodes, small constants, and the arrays of the variant's data file as
ONNX external data."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from m2v_edge.bundle import ArrayEntry


class GraphBuilder:
    """Accumulates the nodes and initializers of a pooling graph (`m2v_edge.export.graph` and `graph_int4`).

    :param data_file: the data file's name inside the bundle, where `arrays` lie.
    :param arrays: the data file's layout: the arrays the graph may read.
    """

    def __init__(self, data_file: str, arrays: dict[str, ArrayEntry]) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.data_file, self.arrays = data_file, arrays
        self.array_inputs: dict[str, onnx.ValueInfoProto] = {}
        """The name, type and shape of each array read, to check the graph without the data file (`graph._check`)."""

    def const(self, name: str, value: np.ndarray) -> str:
        """A small constant held in the graph; returns its name."""
        self.initializers.append(numpy_helper.from_array(value, name=name))
        return name

    def array(self, name: str) -> str:
        """An array of the data file, referred to as ONNX external data where the layout puts it (never copied into
        the graph); returns its name, which is the layout's."""
        if name not in self.array_inputs:
            entry = self.arrays[name]
            dtype = helper.np_dtype_to_tensor_dtype(np.dtype(entry.dtype))
            tensor = TensorProto(name=name, data_type=dtype, dims=entry.shape, data_location=TensorProto.EXTERNAL)
            for key, value in (("location", self.data_file), ("offset", str(entry.offset)), ("length", str(entry.length))):
                item = tensor.external_data.add()
                item.key, item.value = key, value
            self.initializers.append(tensor)
            self.array_inputs[name] = helper.make_tensor_value_info(name, dtype, list(entry.shape))
        return name

    def op(self, op_type: str, inputs: list[str], output: str, **attrs: object) -> str:
        """A node with one output, named after it; returns the output's name."""
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output
