"""The bundle format's content checks, run before onnxruntime, numpy or tokenizers read a file (standard library only).

`m2v_edge.bundle.verify` runs these once per file state, after the sha256 matched, and remembers success together
with it. The checks catch files that are intact (their sha256 is the manifest's) but hostile or inconsistent: a
graph that would make onnxruntime read files it names (ONNX external data other than its own data file, exactly as
the manifest lays it out), or whose inputs, output dim, table type or table rows disagree with the manifest; a data
file whose token mapping points outside its table; a tokenizer that is not JSON or whose token ids do not fit the
table.
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
_ONNX_TYPE_OF = {name: number for number, name in _ONNX_TYPES.items()}
_STANDARD_DOMAINS = ("", "ai.onnx")


def check_model_file(path: Path, manifest: Manifest, variant: str) -> None:
    """Refuse a graph onnxruntime must not open: external data (which would make onnxruntime read files named by
    the graph) anywhere but in the variant's data file, exactly as the manifest lays out its arrays (format 3) or
    as the whole table (format 2); in format 3, an array gathered by token id that is not in the data file, or an
    array of the layout the graph does not read; non-standard operator domains; or inputs, output dim, table type
    or rows that disagree with the manifest. Reads the file with the standard-library scanner `m2v_edge.onnx_scan`,
    never with onnx."""
    try:
        model = onnx_scan.scan_model(path)
    except onnx_scan.ScanError as exc:
        raise BundleError(f"{path} is not a valid ONNX graph ({exc}); {_FIX}") from None
    data = manifest.tables.get(variant)
    laid_out = data is not None and bool(data.arrays)  # format 3
    listed = _is_laid_out if laid_out else _is_listed_table
    for tensor in model.tensors:
        if (tensor.external or tensor.external_location) and not listed(tensor, manifest, variant):
            location = dict(tensor.external).get("location", "")
            raise BundleError(
                f"{path}: tensor {tensor.name!r} ({tensor.where}) keeps its data in an external file "
                f"{location!r}{_external_note(path.parent, location, manifest, variant)}; m2v-edge graphs keep only "
                f"their arrays outside, in the data file the manifest lists, and any other ONNX external data is "
                f"refused: {_FIX}"
            )
    if laid_out:
        _check_reads_the_layout(path, model, data.file, set(data.arrays))
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
    name, element = "table" if laid_out else table_tensor(variant), _TABLE_TYPES[variant]
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


def _check_reads_the_layout(path: Path, model: onnx_scan.Model, data_file: str, arrays: set[str]) -> None:
    """Format 3: the graph reads every array of the layout from the data file, and gathers by token id from no
    array kept inside the graph (a reader of the data file would then pool other rows than the graph)."""
    outside = {name for name, tensor in model.initializers.items() if tensor.external_location}
    inside = sorted({node.inputs[0] for node in model.nodes if node.op_type == "Gather" and node.inputs}
                    & {name for name, tensor in model.initializers.items() if not tensor.external_location})
    if outside != arrays or inside:
        raise BundleError(f"{path} reads {sorted(outside)} from {data_file} and {inside} from inside the graph, but "
                          f"the manifest lays out {sorted(arrays)} in {data_file}: the graph and the manifest "
                          f"disagree; {_FIX}")


def check_data_file(path: Path, manifest: Manifest, variant: str) -> None:
    """Format 3: refuse a data file whose token mapping points at rows its table does not have (the layout itself,
    offsets and lengths inside the file, was checked with the manifest)."""
    arrays = manifest.tables[variant].arrays
    mapping, rows = arrays.get("mapping"), arrays["table"].shape[0]
    top = None if mapping is None else _max_int64(path, mapping.offset, mapping.length)
    if top is not None and not 0 <= top < rows:
        raise BundleError(f"{path}: the token mapping points at row {top} but the table has {rows} rows: the table "
                          f"does not fit the vocabulary; {_FIX}")


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


def _is_laid_out(tensor: onnx_scan.Tensor, manifest: Manifest, variant: str) -> bool:
    """Whether an external tensor is a graph initializer the manifest lays out in the variant's data file (format 3),
    with exactly that location, offset, length, type and shape (and nothing else)."""
    entry = manifest.tables[variant]
    array = entry.arrays.get(tensor.name)
    if array is None or tensor.where != "graph initializer":
        return False
    expected = sorted([("location", entry.file), ("offset", str(array.offset)), ("length", str(array.length))])
    return (tensor.external_location and tensor.raw is None and sorted(tensor.external) == expected
            and tensor.dims == array.shape and tensor.data_type == _ONNX_TYPE_OF.get(array.dtype))


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
        return f" (the {owners[0]} variant's data file, not {variant}'s: the manifest's variants disagree with the files)"
    if location == getattr(manifest.tables.get(variant), "file", None):
        return (" (this variant's data file, but not as the manifest lays out its arrays: the graph and its data "
                "file disagree)")
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
