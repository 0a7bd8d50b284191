"""A stdlib-only reader of the ONNX protobuf wire format: just what the bundle checks need, before onnxruntime runs.

The runtime must not import `onnx`, so `scan_model` walks a serialised `ModelProto` by hand and reports every
tensor anywhere in the file (graph initializers and sparse initializers, node attributes `t`, `tensors`,
`sparse_tensor(s)`, sub-graphs `g` / `graphs` at any depth, model-local functions, training info) with its
external-data references, plus the main graph's inputs, outputs (with shapes), initializers and nodes, and the
opset imports.

The scan is strict: in a message that can hold tensors, an unknown field number, a wrong wire type or a length
running past its parent is refused, so no tensor hides where the scan does not look. Bulk data (`raw_data`) is
skipped by its length, never read: the scan of a 30 MB graph takes well under a millisecond once it is cached.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
MAX_DEPTH = 16
"""Deepest nesting of sub-graphs accepted (m2v-edge graphs have none)."""
EXTERNAL = 1
"""`TensorProto.DataLocation.EXTERNAL`."""

# Field numbers each message may use (onnx.proto, IR version 11); anything else in these messages is refused.
_MODEL = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25, 26})
_GRAPH = frozenset({1, 2, 5, 10, 11, 12, 13, 14, 15, 16})
_NODE = frozenset(range(1, 11))
_ATTRIBUTE = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 20, 21, 22, 23})
_FUNCTION = frozenset({1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})
_TRAINING = frozenset({1, 2, 3, 4})
_SPARSE = frozenset({1, 2, 3})
_TENSOR = frozenset({*range(1, 15), 16})

Span = tuple[int, int]
Field = tuple[int, int, Any]
"""(number, wire type, value) of one field."""
Shape = tuple[int | str | None, ...] | None
"""An int, a symbolic name or None per axis; None when no shape is given."""


class ScanError(ValueError):
    """The file is not a well-formed ONNX model, or holds something the scan will not vouch for."""


class Tensor(NamedTuple):
    """A `TensorProto`: `where` it sits (e.g. ``graph initializer``), its `external_data` (key, value) entries,
    whether `data_location` is EXTERNAL, and the (offset, length) of its `raw_data` in the file (or None)."""

    name: str
    dims: tuple[int, ...]
    data_type: int
    where: str
    external: tuple[tuple[str, str], ...] = ()
    external_location: bool = False
    raw: Span | None = None


class Node(NamedTuple):
    """A node of the main graph."""

    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class Model:
    """What `scan_model` read (a plain class: dataclasses would cost milliseconds of import on a cold load)."""

    def __init__(self) -> None:
        self.opsets: dict[str, int] = {}
        self.inputs: list[str] = []  # the main graph's input names
        self.outputs: dict[str, Shape] = {}  # the main graph's outputs and their shapes
        self.initializers: dict[str, Tensor] = {}  # the main graph's, by name
        self.nodes: list[Node] = []  # the main graph's
        self.tensors: list[Tensor] = []  # every tensor in the file


def scan_model(path: str | os.PathLike[str]) -> Model:
    """Scan an ONNX file; raise `ScanError` when it is malformed or refused.

    The file is read through a small window with `pread`, not memory-mapped: a file truncated while it is read
    gives a `ScanError`, where a mapping would kill the process with SIGBUS."""
    with open(Path(path), "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise ScanError("the file is empty")
        return _Scan(handle.fileno()).model(size)


class _Scan:
    WINDOW = 1 << 16

    def __init__(self, fd: int) -> None:
        self.fd, self.out = fd, Model()
        self.window, self.start = b"", 0

    # -------------------------------------------------------------------- wire format

    def _read(self, start: int, end: int) -> bytes:
        data = os.pread(self.fd, end - start, start)
        if len(data) != end - start:
            raise ScanError("the file changed while it was read")
        return data

    def _byte(self, pos: int) -> int:
        if not self.start <= pos < self.start + len(self.window):
            self.window, self.start = os.pread(self.fd, self.WINDOW, pos), pos
            if not self.window:
                raise ScanError("the file changed while it was read")
        return self.window[pos - self.start]

    def _varint(self, pos: int, end: int) -> tuple[int, int]:
        value = shift = 0
        while pos < end and shift <= 63:
            byte = self._byte(pos)
            value, pos, shift = value | (byte & 0x7F) << shift, pos + 1, shift + 7
            if byte < 0x80:
                return value, pos
        raise ScanError(f"malformed varint at byte {pos}")

    def _fields(self, span: Span, message: str, allowed: frozenset[int] | None = None) -> Iterator[Field]:
        """(field number, wire type, value) of a message: an int for varints, the (start, end) of a length field."""
        pos, end = span
        while pos < end:
            key, pos = self._varint(pos, end)
            number, wire = key >> 3, key & 7
            if number == 0 or (allowed is not None and number not in allowed):
                raise ScanError(f"unknown field {number} in {message}")
            value: Any = None
            if wire == _VARINT:
                value, pos = self._varint(pos, end)
            elif wire in (_I64, _I32):
                pos += 8 if wire == _I64 else 4
            elif wire == _LEN:
                length, pos = self._varint(pos, end)
                value, pos = (pos, pos + length), pos + length
            else:
                raise ScanError(f"unsupported wire type {wire} in {message}")
            if pos > end:
                raise ScanError(f"{message} is truncated (field {number} runs past its end)")
            yield number, wire, value

    @staticmethod
    def _span(wire: int, value: Any, what: str) -> Span:
        if wire != _LEN:
            raise ScanError(f"{what} has the wrong wire type")
        return value

    def _text(self, wire: int, value: Any, what: str) -> str:
        start, end = self._span(wire, value, what)
        return self._read(start, end).decode("utf-8", "replace")

    def _ints(self, wire: int, value: Any, what: str) -> list[int]:
        """A repeated int64 field occurrence, packed or not, as signed values."""
        raw = [value] if wire == _VARINT else []
        if wire != _VARINT:
            pos, end = self._span(wire, value, what)
            while pos < end:
                item, pos = self._varint(pos, end)
                raw.append(item)
        return [v - (1 << 64) if v >= 1 << 63 else v for v in raw]

    # -------------------------------------------------------------------- messages

    def model(self, size: int) -> Model:
        for number, wire, value in self._fields((0, size), "ModelProto", _MODEL):
            if number == 7:
                self._graph(self._span(wire, value, "graph"), "graph", 0, main=True)
            elif number == 8:
                opset = {n: (w, v) for n, w, v in self._fields(self._span(wire, value, "opset"), "OperatorSetIdProto")}
                domain = self._text(*opset[1], "opset domain") if 1 in opset else ""
                self.out.opsets[domain] = opset[2][1] if opset.get(2, (None,))[0] == _VARINT else 0
            elif number == 20:
                for n, w, v in self._fields(self._span(wire, value, "training_info"), "TrainingInfoProto", _TRAINING):
                    if n in (1, 2):
                        self._graph(self._span(w, v, "training graph"), "training info", 1, main=False)
            elif number == 25:
                for n, w, v in self._fields(self._span(wire, value, "function"), "FunctionProto", _FUNCTION):
                    if n == 7:
                        self._node(self._span(w, v, "function node"), "function", 1)
                    elif n == 11:
                        self._attribute(self._span(w, v, "function attribute"), "function attribute", 1)
        if not (self.out.inputs or self.out.outputs or self.out.nodes):  # not even an empty graph
            raise ScanError("it holds no graph")
        return self.out

    def _graph(self, span: Span, where: str, depth: int, *, main: bool) -> None:
        if depth > MAX_DEPTH:
            raise ScanError(f"sub-graphs nested more than {MAX_DEPTH} deep")
        for number, wire, value in self._fields(span, "GraphProto", _GRAPH):
            if number == 1:
                node = self._node(self._span(wire, value, "node"), where, depth)
                if main:
                    self.out.nodes.append(node)
            elif number == 5:
                tensor = self._tensor(self._span(wire, value, "initializer"), f"{where} initializer")
                if main:
                    self.out.initializers[tensor.name] = tensor
            elif number == 15:
                self._sparse(self._span(wire, value, "sparse_initializer"), f"{where} sparse initializer")
            elif number in (11, 12) and main:
                name, shape = self._value(self._span(wire, value, "graph input/output"))
                if number == 11:
                    self.out.inputs.append(name)
                else:
                    self.out.outputs[name] = shape

    def _node(self, span: Span, where: str, depth: int) -> Node:
        texts: dict[int, str] = {3: "", 4: "", 7: ""}  # name, op_type, domain
        lists: dict[int, list[str]] = {1: [], 2: []}  # inputs, outputs
        attributes: list[Span] = []
        for number, wire, value in self._fields(span, "NodeProto", _NODE):
            if number in lists:
                lists[number].append(self._text(wire, value, "node input/output"))
            elif number in texts:
                texts[number] = self._text(wire, value, "node name/op_type/domain")
            elif number == 5:
                attributes.append(self._span(wire, value, "attribute"))
        for attribute in attributes:
            self._attribute(attribute, f"{where} node {texts[3] or texts[4]!r} attribute", depth)
        return Node(texts[4], texts[7], tuple(lists[1]), tuple(lists[2]))

    def _attribute(self, span: Span, where: str, depth: int) -> None:
        for number, wire, value in self._fields(span, "AttributeProto", _ATTRIBUTE):
            if number in (5, 10):
                self._tensor(self._span(wire, value, "attribute tensor"), where)
            elif number in (6, 11):
                self._graph(self._span(wire, value, "attribute graph"), f"{where} sub-graph", depth + 1, main=False)
            elif number in (22, 23):
                self._sparse(self._span(wire, value, "attribute sparse tensor"), where)

    def _sparse(self, span: Span, where: str) -> None:
        for number, wire, value in self._fields(span, "SparseTensorProto", _SPARSE):
            if number in (1, 2):
                self._tensor(self._span(wire, value, "sparse tensor part"), where)

    def _tensor(self, span: Span, where: str) -> Tensor:
        name, dims, data_type, external, location, raw = "", [], 0, [], False, None
        for number, wire, value in self._fields(span, "TensorProto", _TENSOR):
            if number == 1:
                dims += self._ints(wire, value, "tensor dims")
            elif number == 2 and wire == _VARINT:
                data_type = value
            elif number == 8:
                name = self._text(wire, value, "tensor name")
            elif number == 9:
                start, end = self._span(wire, value, "raw_data")
                raw = (start, end - start)
            elif number == 13:
                entry = {n: self._text(w, v, "external_data entry")
                         for n, w, v in self._fields(self._span(wire, value, "external_data"), "external_data entry")
                         if n in (1, 2)}
                external.append((entry.get(1, ""), entry.get(2, "")))
            elif number == 14:  # anything but a plain DEFAULT counts as external
                location = location or wire != _VARINT or value == EXTERNAL
        tensor = Tensor(name, tuple(dims), data_type, where, tuple(external), location, raw)
        self.out.tensors.append(tensor)
        return tensor

    def _value(self, span: Span) -> tuple[str, Shape]:
        """ValueInfoProto: its name, and the shape in type.tensor_type.shape (TensorShapeProto of Dimensions)."""
        name, shape = "", None
        for number, wire, value in self._fields(span, "ValueInfoProto"):
            if number == 1:
                name = self._text(wire, value, "value name")
            elif number == 2:
                types = self._fields(self._span(wire, value, "type"), "TypeProto")
                for tensor_type in [self._span(w, v, "tensor_type") for n, w, v in types if n == 1]:
                    parts = self._fields(tensor_type, "TypeProto.Tensor")
                    for dims in [self._span(w, v, "shape") for n, w, v in parts if n == 2]:
                        shape = tuple(self._dimension(self._span(w, v, "dim")) for n, w, v in
                                      self._fields(dims, "TensorShapeProto") if n == 1)
        return name, shape

    def _dimension(self, span: Span) -> int | str | None:
        axis: int | str | None = None
        for number, wire, value in self._fields(span, "Dimension"):
            if number == 1:
                axis = self._ints(wire, value, "dim_value")[-1]
            elif number == 2:
                axis = self._text(wire, value, "dim_param")
        return axis
