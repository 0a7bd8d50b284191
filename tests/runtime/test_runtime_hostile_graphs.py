"""Hostile ONNX graphs are refused before onnxruntime reads them, with a message naming the file and the fix.

Each graph is built with the `onnx` package and installed into a private copy of a tiny bundle with its manifest
entry updated, so the sha256 check passes and the content checks (`m2v_edge.bundle.checks` on the stdlib scanner
`m2v_edge.onnx_scan`) are what refuses it; `readers` shows that onnxruntime was never handed the file.
onnxruntime 1.17 (the oldest the bundles target) reads `../` and symlinked external data without a word, which is
why m2v-edge refuses external data itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers.hostile import FIX, MAPPED_SPEC, external, external_tensor, graph_of, install, install_graph, refused
from helpers.tiny_models import TinyModels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from m2v_edge.onnx_scan import ScanError, scan_model

# ----------------------------------------------------------------------------- ONNX external data


@pytest.mark.parametrize(
    ("location", "note"),
    [
        ("/etc/passwd", "an absolute path"),
        ("../outside.bin", "through '..'"),
        ("link.bin", "a symlink leading out of the bundle"),
        ("inside.bin", "not listed in the manifest"),
        ("sub/../../outside.bin", "through '..'"),
        (None, "no location given"),  # data_location EXTERNAL without any external_data entry
    ],
)
def test_external_data_is_refused_wherever_it_points(bundle: Path, readers: list[str], location, note) -> None:
    outside = bundle.parent / "outside.bin"
    outside.write_bytes(b"\x00\x00\x80\x3f" * 4096)
    (bundle / "link.bin").symlink_to(outside)
    (bundle / "inside.bin").write_bytes(b"\x00" * 65536)
    model = graph_of(bundle)
    table = next(t for t in model.graph.initializer if t.name == "table")
    external(table, location)
    path = install_graph(bundle, model)
    refused(bundle, str(path), "'table'", "external file", note, FIX, readers=readers)


def _if_node(branch_tensor: onnx.TensorProto, depth: int = 1) -> onnx.NodeProto:
    """An If node whose branches hold a Constant of `branch_tensor`, nested `depth` deep."""
    out = helper.make_tensor_value_info("c", TensorProto.FLOAT, [16])
    leaf = helper.make_graph([helper.make_node("Constant", [], ["c"], value=branch_tensor)], "leaf", [], [out])
    body = leaf
    for level in range(depth):
        node = helper.make_node("If", ["cond"], ["c"], then_branch=body, else_branch=leaf, name=f"if{level}")
        body = helper.make_graph([node], f"level{level}", [], [out])
    return body.node[0]


def _hide_in_attribute(model: onnx.ModelProto) -> None:
    model.graph.node.append(helper.make_node("Constant", [], ["hidden"], value=external_tensor("v"), name="hide"))


def _hide_in_subgraph(model: onnx.ModelProto) -> None:
    model.graph.node.append(_if_node(external_tensor("v")))


def _hide_in_function(model: onnx.ModelProto) -> None:
    node = helper.make_node("Constant", [], ["y"], value=external_tensor("v"))
    model.functions.append(helper.make_function("local", "f", [], ["y"], [node], [helper.make_opsetid("", 17)]))


def _hide_in_sparse_initializer(model: onnx.ModelProto) -> None:
    values = external_tensor("sparse_values")
    indices = numpy_helper.from_array(np.arange(16, dtype=np.int64), name="sparse_indices")
    model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [32]))


def _hide_in_training_info(model: onnx.ModelProto) -> None:
    graph = helper.make_graph([], "init", [], [], initializer=[external_tensor("v")])
    model.training_info.add().initialization.CopyFrom(graph)


def _hide_in_attribute_tensors(model: onnx.ModelProto) -> None:
    attribute = helper.make_attribute("tensors", [external_tensor("v")])
    node = helper.make_node("Identity", ["summed"], ["unused"], name="lists")
    node.attribute.append(attribute)
    model.graph.node.append(node)


@pytest.mark.parametrize(
    "hide",
    [_hide_in_attribute, _hide_in_subgraph, _hide_in_function, _hide_in_sparse_initializer, _hide_in_training_info,
     _hide_in_attribute_tensors],
    ids=lambda f: f.__name__[len("_hide_in_"):],
)
def test_external_data_hidden_anywhere_in_the_file_is_found(bundle: Path, readers: list[str], hide) -> None:
    model = graph_of(bundle)
    hide(model)
    path = install_graph(bundle, model)
    refused(bundle, str(path), "external file", "'weights.bin'", FIX, readers=readers)


# ----------------------------------------------------------------------------- the data file (format 3)


def _own_graph(bundle: Path, variant: str = "fp32") -> onnx.ModelProto:
    """The graph as exported: its table still a reference to `model.<variant>.data`."""
    return onnx.load(str(bundle / f"model.{variant}.onnx"), load_external_data=False)


def _set_external(tensor: onnx.TensorProto, **entries: str) -> None:
    del tensor.external_data[:]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in entries.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


@pytest.mark.parametrize(
    ("case", "note"),
    [
        ("offset", "not as the manifest lays out its arrays"),
        ("length", "not as the manifest lays out its arrays"),
        ("second-location", "through '..'"),  # a second location entry, which onnxruntime would follow
        ("other-tensor", "'zero'"),
        ("other-variant", "int8 variant's data file"),
    ],
)
def test_only_the_table_may_use_the_table_file(bundle: Path, readers: list[str], case: str, note: str) -> None:
    model = _own_graph(bundle)
    table = next(t for t in model.graph.initializer if t.name == "table")
    size = str((bundle / "model.fp32.data").stat().st_size)
    if case == "offset":
        _set_external(table, location="model.fp32.data", offset="64", length=size)
    elif case == "length":
        _set_external(table, location="model.fp32.data", offset="0", length="64")
    elif case == "second-location":
        entry = table.external_data.add()
        entry.key, entry.value = "location", "../outside.bin"
    elif case == "other-tensor":
        zero = next(t for t in model.graph.initializer if t.name == "zero")
        _set_external(zero, location="model.fp32.data", offset="0", length="4")
    else:
        _set_external(table, location="model.int8.data", offset="0", length=size)
    path = install_graph(bundle, model)
    refused(bundle, str(path), "external file", note, FIX, readers=readers)


def test_arrays_kept_inside_the_graph_are_refused_in_format_3(bundle: Path, readers: list[str]) -> None:
    """A format-3 graph gathers from its data file only: arrays inside it would not be the ones the manifest lays out
    (and a reader of the data file would pool other vectors)."""
    model = onnx.load(str(bundle / "model.int8.onnx"))  # the data file's arrays read into the graph
    path = install_graph(bundle, model, variant="int8")
    refused(bundle, str(path), "reads [] from model.int8.data and ['scales', 'table'] from inside the graph",
            "lays out ['scales', 'table']", variant="int8", readers=readers)


@pytest.mark.parametrize("damage", ["truncated", "flipped-byte", "missing", "symlink-out", "renamed-in-manifest"])
def test_a_damaged_table_file_is_refused(bundle: Path, readers: list[str], damage: str) -> None:
    path = bundle / "model.fp32.data"
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[:-4])
        needles = [str(path), "truncated"]
    elif damage == "flipped-byte":
        path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
        needles = [str(path), "does not match its manifest"]
    elif damage == "missing":
        path.unlink()
        needles = [str(path), "is missing"]
    elif damage == "symlink-out":
        outside = bundle.parent / "outside.data"
        outside.write_bytes(data)
        path.unlink()
        path.symlink_to(outside)
        needles = [str(path), "outside the bundle folder"]
    else:
        from helpers.hostile import edit_manifest

        edit_manifest(bundle, lambda m: m["tables"]["fp32"].update(file="model.fp16.data"))
        needles = ["m2v_edge.json", "expected 'model.fp32.data'"]
    refused(bundle, *needles, readers=readers, tokenizer_read=damage != "renamed-in-manifest")


# ----------------------------------------------------------------------------- malformed or foreign graphs


def test_unknown_protobuf_fields_are_refused(bundle: Path, readers: list[str]) -> None:
    data = graph_of(bundle).SerializeToString() + bytes([(99 << 3 | 2) & 0x7F | 0x80, 99 >> 4, 1]) + b"x"
    path = install(bundle, "model.fp32.onnx", data)
    refused(bundle, str(path), "not a valid ONNX graph", "unknown field 99 in ModelProto", readers=readers)


def test_truncated_graph_with_a_matching_manifest(bundle: Path, readers: list[str]) -> None:
    data = (bundle / "model.fp32.onnx").read_bytes()
    path = install(bundle, "model.fp32.onnx", data[: len(data) * 2 // 3])
    refused(bundle, str(path), "not a valid ONNX graph", "truncated", readers=readers)


def test_empty_and_garbage_graphs(bundle: Path, readers: list[str]) -> None:
    path = install(bundle, "model.fp32.onnx", b"")
    refused(bundle, str(path), "empty", readers=readers)
    install(bundle, "model.fp32.onnx", b"\xff" * 100)
    refused(bundle, str(path), "not a valid ONNX graph", readers=readers)


def test_sub_graphs_nested_too_deep(bundle: Path, readers: list[str]) -> None:
    model = graph_of(bundle)
    model.graph.node.append(_if_node(numpy_helper.from_array(np.zeros(16, dtype=np.float32)), depth=20))
    refused(bundle, str(install_graph(bundle, model)), "nested more than", readers=readers)


def test_custom_operator_domains_are_refused(bundle: Path, readers: list[str]) -> None:
    model = graph_of(bundle)
    model.graph.node.append(helper.make_node("Gelu", ["summed"], ["g"], domain="com.microsoft"))
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    path = install_graph(bundle, model)
    refused(bundle, str(path), "'com.microsoft'", "standard ONNX operators", readers=readers)


def test_graph_with_other_inputs(bundle: Path, readers: list[str]) -> None:
    model = graph_of(bundle)
    model.graph.input[1].name = "mask"
    refused(bundle, str(install_graph(bundle, model)), "not an m2v-edge pooling graph", "'mask'", readers=readers)


def test_graph_without_the_output(bundle: Path, readers: list[str]) -> None:
    model = graph_of(bundle)
    model.graph.output[0].name = "other"
    refused(bundle, str(install_graph(bundle, model)), "no [batch, dim] output 'embeddings'", readers=readers)


# ----------------------------------------------------------------------------- the scanner on mangled bytes


@pytest.fixture(scope="module")
def graph_bytes(tiny_models: TinyModels) -> bytes:
    return (tiny_models.bundle(MAPPED_SPEC) / "model.int8.onnx").read_bytes()


@settings(max_examples=300, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_scanner_on_mangled_graphs_returns_or_raises_scan_error(graph_bytes: bytes, tmp_path: Path, data) -> None:
    """Flipped, cut or inserted bytes: the scanner returns or raises ScanError, nothing else, and never hangs."""
    mangled = bytearray(graph_bytes)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(mangled) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            mangled[position] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del mangled[position:]
            if not mangled:
                mangled.append(0)
        else:
            mangled[position:position] = data.draw(st.binary(min_size=1, max_size=12))
    path = tmp_path / "mangled.onnx"
    path.write_bytes(bytes(mangled))
    try:
        scan_model(path)
    except ScanError:
        pass
