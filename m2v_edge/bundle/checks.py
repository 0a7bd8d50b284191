"""The bundle format's content checks, run before onnxruntime or tokenizers read a file (standard library only).

`m2v_edge.bundle.verify.verify_model` and `verify_tokenizer` run these once per file state, after the sha256 matched,
and remember success together with it. The checks catch files that are intact (their sha256 is the manifest's)
but hostile or inconsistent: a graph that would make onnxruntime read files it names (ONNX external data other than
its own table file, exactly as the manifest lists it), or
whose inputs, output dim, table type or table rows disagree with the manifest; a tokenizer that is not JSON or
whose token ids do not fit the table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from m2v_edge import onnx_scan
from m2v_edge.bundle.format import ATTENTION_MASK, INPUT_IDS, OUTPUT, table_tensor
from m2v_edge.bundle.manifest import Manifest
from m2v_edge.errors import BundleError

_FIX = "re-export the bundle ('m2v-edge export') or copy it again"
_TABLE_TYPES = {"fp32": 1, "fp16": 10, "int8": 3, "int4": 2}
"""Each variant's table element type (FLOAT, FLOAT16, INT8, UINT8)."""
_ELEMENT_BYTES = {1: 4, 10: 2, 3: 1, 2: 1}
_ONNX_TYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16", 11: "float64"}
_STANDARD_DOMAINS = ("", "ai.onnx")


def check_model_file(path: Path, manifest: Manifest, variant: str) -> None:
    """Refuse a graph onnxruntime must not open: external data (which would make onnxruntime read files named by
    the graph) anywhere but in the table, whose data may be the manifest's table file for the variant, whole;
    non-standard operator domains; or inputs, output dim, table type or rows that disagree with the manifest.
    Reads the file with the standard-library scanner `m2v_edge.onnx_scan`, never with onnx."""
    try:
        model = onnx_scan.scan_model(path)
    except onnx_scan.ScanError as exc:
        raise BundleError(f"{path} is not a valid ONNX graph ({exc}); {_FIX}") from None
    for tensor in model.tensors:
        if (tensor.external or tensor.external_location) and not _is_listed_table(tensor, manifest, variant):
            location = dict(tensor.external).get("location", "")
            raise BundleError(
                f"{path}: tensor {tensor.name!r} ({tensor.where}) keeps its data in an external file "
                f"{location!r}{_external_note(path.parent, location, manifest, variant)}; m2v-edge graphs keep only their table outside, "
                f"in the table file the manifest lists, and any other ONNX external data is refused: {_FIX}"
            )
    foreign = sorted({d for d in model.opsets if d not in _STANDARD_DOMAINS}
                     | {n.domain for n in model.nodes if n.domain not in _STANDARD_DOMAINS})
    if foreign:
        raise BundleError(f"{path} uses operators of domain {', '.join(map(repr, foreign))}; m2v-edge graphs use "
                          f"standard ONNX operators only: {_FIX}")
    inputs = sorted(set(model.inputs) - set(model.initializers))
    if inputs != sorted((INPUT_IDS, ATTENTION_MASK)):
        raise BundleError(f"{path} is not an m2v-edge pooling graph: its inputs are {inputs}, not "
                          f"{[ATTENTION_MASK, INPUT_IDS]}; {_FIX}")
    shape = model.outputs.get(OUTPUT)
    if shape is None or len(shape) != 2:
        raise BundleError(f"{path} is not an m2v-edge pooling graph: it has no [batch, dim] output {OUTPUT!r}; {_FIX}")
    if shape[1] != manifest.dim:
        raise BundleError(f"{path} computes vectors of dim {shape[1]} but the manifest says dim "
                          f"{manifest.dim}: the manifest and the graph come from different exports; {_FIX}")
    name, element = table_tensor(variant), _TABLE_TYPES[variant]
    table = model.initializers.get(name)
    if table is None or table.data_type != element:
        found = "missing" if table is None else _ONNX_TYPES.get(table.data_type, f"type {table.data_type}")
        raise BundleError(f"{path} is not the {variant} graph the manifest lists (its table {name!r} is {found}): "
                          f"the manifest's variants disagree with the files; {_FIX}")
    _check_rows(path, model, manifest.vocab_size)


def _check_rows(path: Path, model: onnx_scan.Model, vocab_size: int) -> None:
    """Every table gathered by token id has a row for each of the `vocab_size` ids; a mapping stays in range."""
    gathers = [node for node in model.nodes if node.op_type == "Gather" and len(node.inputs) == 2 and node.outputs]
    mappings: dict[str, onnx_scan.Tensor] = {}
    for node in gathers:
        data = model.initializers.get(node.inputs[0])
        if data is None or node.inputs[1] != INPUT_IDS:
            continue
        rows = data.dims[0] if data.dims else 0
        if rows < vocab_size:
            raise BundleError(f"{path}: {data.name!r} has {rows} rows but the tokenizer has {vocab_size} token ids "
                              f"(manifest vocab_size): the table does not fit the vocabulary; {_FIX}")
        mappings[node.outputs[0]] = data
    for node in gathers:
        data, mapping = model.initializers.get(node.inputs[0]), mappings.get(node.inputs[1])
        if data is None or mapping is None or mapping.data_type != 7 or mapping.raw is None:
            continue
        top = _max_int64(path, *mapping.raw)
        rows = data.dims[0] if data.dims else 0
        if top is not None and not 0 <= top < rows:
            raise BundleError(f"{path}: the token mapping {mapping.name!r} points at row {top} but {data.name!r} has "
                              f"{rows} rows: the table does not fit the vocabulary; {_FIX}")


def _max_int64(path: Path, offset: int, length: int) -> int | None:
    """The largest little-endian int64 stored at `offset`, or the smallest when it is negative (None: none)."""
    import array
    import sys

    values = array.array("q")
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    values.frombytes(data[: len(data) - len(data) % 8])
    if sys.byteorder == "big":
        values.byteswap()
    if not values:
        return None
    low, high = min(values), max(values)
    return low if low < 0 else high


def _is_listed_table(tensor: onnx_scan.Tensor, manifest: Manifest, variant: str) -> bool:
    """Whether an external tensor is the variant's table with all of the manifest's table file as its data (and
    nothing else: one location, offset 0, the file's length, which is what the table's shape and type take)."""
    entry = manifest.tables.get(variant)
    if entry is None or tensor.where != "graph initializer" or tensor.name != table_tensor(variant):
        return False
    element = _ELEMENT_BYTES.get(tensor.data_type)
    count = 1
    for dim in tensor.dims:
        count *= dim
    expected = sorted([("location", entry.file), ("offset", "0"), ("length", str(entry.size))])
    return (tensor.external_location and tensor.raw is None and sorted(tensor.external) == expected
            and element is not None and count * element == entry.size)


def _external_note(folder: Path, location: str, manifest: Manifest, variant: str) -> str:
    """Why an external-data location is dangerous or wrong, for the message."""
    owners = [name for name, entry in manifest.tables.items() if entry.file == location and name != variant]
    if owners:
        return f" (the {owners[0]} variant's table file, not {variant}'s: the manifest's variants disagree with the files)"
    if location == getattr(manifest.tables.get(variant), "file", None):
        return " (this variant's table file, but not as the whole of the table: the graph and its table disagree)"
    if not location:
        return " (no location given)"
    if Path(location).is_absolute():
        return " (an absolute path)"
    if ".." in Path(location).parts:
        return " (outside the bundle, through '..')"
    target = (folder / location).resolve()
    if folder.resolve() not in target.parents:
        return f" (a symlink leading out of the bundle, to {target})"
    return " (inside the bundle, but not listed in the manifest, so no sha256 vouches for it)"


def check_tokenizer_file(path: Path, manifest: Manifest) -> None:
    """Refuse a `tokenizer.json` that is not JSON, has no vocabulary, or whose token ids do not fit the table."""
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise BundleError(f"{path} is not valid JSON ({str(exc)[:200]}); {_FIX}") from None
    bound = _token_id_bound(data)
    if bound is None:
        raise BundleError(f"{path} is not a tokenizer file (no model vocabulary of non-negative ids); {_FIX}")
    if bound > manifest.vocab_size:
        raise BundleError(f"{path} has token ids up to {bound - 1} but the table has {manifest.vocab_size} rows "
                          f"(manifest vocab_size): the tokenizer does not belong to this bundle; {_FIX}")


def _token_id_bound(data: Any) -> int | None:
    """1 + the largest token id a tokenizer.json can produce (model vocabulary and added tokens), None if unreadable."""
    model = data.get("model") if isinstance(data, dict) else None
    vocab = model.get("vocab") if isinstance(model, dict) else None
    added = data.get("added_tokens") or [] if isinstance(data, dict) else []
    if isinstance(vocab, dict):
        ids = list(vocab.values())
    elif isinstance(vocab, list) and vocab:  # Unigram: [piece, score] pairs, ids by position
        ids = [len(vocab) - 1]
    else:
        return None
    if not isinstance(added, list) or not all(isinstance(token, dict) for token in added):
        return None
    ids += [token.get("id") for token in added]
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
        return None
    return max(ids) + 1
