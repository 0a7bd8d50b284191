"""Two int4 graph designs timed on the same batches (issue 7): the shipped standard-operator graph against one built
on onnxruntime's `GatherBlockQuantized` (com.microsoft domain), both decoding the same 4-bit codes and scales.

Only the graphs are timed (`session.run` over the batches the runtime would make: texts tokenised once, sorted by
length, padded batches of at most `token_budget` tokens), in rounds with a rotating order; figures are paired by
round against the fp32 graph of the same bundle. The GatherBlockQuantized graph is built here for the measurement
only: it needs a model without `weights`/`mapping` (potion-base-8M) and float32 scales (the operator's output type
is the scales' type), so its file is 0.24 MB larger.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.stats import paired_ratios, summarize

DESIGNS = ("fp32 graph", "int4 standard operators (shipped)", "int4 GatherBlockQuantized")


def batches(bundle: Path, texts: list[str], token_budget: int = 4096) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (input_ids, attention_mask) batches the runtime would run for `texts`."""
    from tokenizers import Tokenizer

    from m2v_edge.bundle import read_manifest

    manifest = read_manifest(bundle)
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    if manifest.max_length is not None:
        tokenizer.enable_truncation(manifest.max_length)
    limit = manifest.char_limit
    ids = [
        e.ids for e in tokenizer.encode_batch_fast([t[:limit] if limit else t for t in texts], add_special_tokens=False)
    ]
    order = sorted((i for i in range(len(ids)) if ids[i]), key=lambda i: len(ids[i]))
    out, start = [], 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * len(ids[order[stop]]) <= token_budget:
            stop += 1
        rows = order[start:stop]
        width = len(ids[rows[-1]])
        batch = np.full((len(rows), width), manifest.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, i in enumerate(rows):
            batch[r, : len(ids[i])] = ids[i]
            mask[r, : len(ids[i])] = 1
        out.append((batch, mask))
        start = stop
    return out


def gather_block_quantized_graph(bundle: Path, model_dir: Path) -> bytes:
    """The int4 pooling graph built on com.microsoft GatherBlockQuantized, from the exporter's own int4 codes."""
    from onnx import TensorProto, helper, numpy_helper

    from m2v_edge.bundle import read_manifest
    from m2v_edge.export.quantize import INT4_BLOCK_SIZE, int4_codes
    from m2v_edge.export.source import load_source

    manifest = read_manifest(bundle)
    src = load_source(model_dir)
    if src.weights is not None or src.mapping is not None or manifest.dim % INT4_BLOCK_SIZE or not manifest.normalize:
        raise ValueError(
            "the GatherBlockQuantized comparison graph is written for plain normalising tables of whole blocks"
        )
    source = src.table.truncated(manifest.dim)
    codes, scales = int4_codes(source.rows(0, source.shape[0]))
    flat = (codes.reshape(codes.shape[0], -1).astype(np.int16) + 8).astype(np.uint8)
    packed = flat[:, 0::2] | (flat[:, 1::2] << 4)  # the operator's layout: element 2j low nibble, 2j + 1 high
    inits = [
        numpy_helper.from_array(packed, "table"),
        numpy_helper.from_array(scales.astype(np.float32), "scales"),
        numpy_helper.from_array(np.array(manifest.unk_id, dtype=np.int64), "unk_id"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array(1e-32, dtype=np.float32), "eps"),
    ]
    node = helper.make_node
    nodes = [
        node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        node("Equal", ["input_ids", "unk_id"], ["is_unk"]),
        node("Where", ["is_unk", "zero", "mask_f"], ["keep"]),
        node(
            "GatherBlockQuantized",
            ["table", "input_ids", "scales"],
            ["vectors"],
            domain="com.microsoft",
            block_size=INT4_BLOCK_SIZE,
            bits=4,
            gather_axis=0,
            quantize_axis=1,
        ),
        node("Unsqueeze", ["keep", "axis1"], ["row_weights"]),
        node("MatMul", ["row_weights", "vectors"], ["summed_3d"]),
        node("Squeeze", ["summed_3d", "axis1"], ["summed"]),
        node("ReduceL2", ["summed"], ["norm"], axes=[1], keepdims=1),
        node("Add", ["norm", "eps"], ["norm_eps"]),
        node("Div", ["summed", "norm_eps"], ["embeddings"]),
    ]
    graph = helper.make_graph(
        nodes,
        "gather_block_quantized_pooling",
        [
            helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
            for n in ("input_ids", "attention_mask")
        ],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", manifest.dim])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    return model.SerializeToString()


def compare(bundle: Path, model_dir: Path, texts: dict[str, list[str]], repeat: int, threads: int) -> dict[str, Any]:
    """Seconds per text set for each design, ratios to the fp32 graph paired by round, and the designs' agreement."""
    import onnxruntime as ort

    def session(model: str | bytes) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    gbq = gather_block_quantized_graph(bundle, model_dir)
    sessions = {
        DESIGNS[0]: session(str(bundle / "model.fp32.onnx")),
        DESIGNS[1]: session(str(bundle / "model.int4.onnx")),
        DESIGNS[2]: session(gbq),
    }
    sets = {name: batches(bundle, items) for name, items in texts.items()}
    ids, mask = sets["documents"][len(sets["documents"]) // 2]
    outputs = [s.run(["embeddings"], {"input_ids": ids, "attention_mask": mask})[0] for s in sessions.values()]
    agreement = float(np.abs(outputs[1] - outputs[2]).max())
    seconds: dict[str, dict[str, list[float]]] = {name: {d: [] for d in sessions} for name in sets}
    for round_index in range(repeat):
        for name, feeds in sets.items():
            shift = round_index % len(DESIGNS)
            for design in DESIGNS[shift:] + DESIGNS[:shift]:
                run = sessions[design].run
                start = time.perf_counter()
                for ids, mask in feeds:
                    run(["embeddings"], {"input_ids": ids, "attention_mask": mask})
                seconds[name][design].append(time.perf_counter() - start)
    ids, mask = sets["queries"][len(sets["queries"]) // 2]
    feed = {"input_ids": ids[:1], "attention_mask": mask[:1]}  # one query of median length
    latency: dict[str, list[float]] = {d: [] for d in sessions}
    for _ in range(repeat):
        for design, s in sessions.items():
            start = time.perf_counter()
            for _ in range(300):
                s.run(["embeddings"], feed)
            latency[design].append((time.perf_counter() - start) / 300 * 1e6)
    return {
        "threads": threads,
        "onnxruntime": ort.__version__,
        "gather_block_quantized_bytes": len(gbq),
        "max_abs_difference_between_int4_designs": agreement,
        "sets": {
            name: {
                design: {
                    "seconds": values,
                    "summary": summarize(values).as_dict(),
                    "ratio_to_fp32_graph": summarize(paired_ratios(values, per[DESIGNS[0]])).as_dict(),
                }
                for design, values in per.items()
            }
            for name, per in seconds.items()
        },
        "single_text_us": {
            design: {
                "summary": summarize(values).as_dict(),
                "ratio_to_fp32_graph": summarize(paired_ratios(values, latency[DESIGNS[0]])).as_dict(),
            }
            for design, values in latency.items()
        },
    }
