"""The bundle format's names and version: file names inside a bundle, variants, the pooling graph's inputs and output.

The leaf of `m2v_edge.bundle`: every other module of the package imports it, it imports none of them.
"""

from __future__ import annotations

FORMAT_VERSION = 3
"""1: tables inside the graphs. 2: each variant's token table in `model.<variant>.data` beside its graph. 3: every
array a variant's graph reads in `model.<variant>.data`, laid out in the manifest. Formats 1 and 2 are still read."""
MANIFEST_FILE = "m2v_edge.json"
TOKENIZER_FILE = "tokenizer.json"
CORE_TOKENIZER_FILE = "tokenizer.m2v"
"""The tokenizer compiled for the native core (layout: m2v_edge/_native/m2v_format.h), when the export found that
the core reproduces tokenizer.json's pipeline."""
VARIANTS = ("fp32", "fp16", "int8", "int4")
"""Every variant this format version knows, in order of decreasing precision."""
DEFAULT_VARIANTS = ("fp32", "int8")
"""What an export writes unless told otherwise (`export_model`, `m2v-edge export`, the drop-in's cached exports)."""

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
OUTPUT = "embeddings"


def model_file(variant: str) -> str:
    """The file name of a variant's graph inside a bundle."""
    return f"model.{variant}.onnx"


def table_file(variant: str) -> str:
    """The file name of a variant's data file (the graph's external data: its arrays) inside a bundle."""
    return f"model.{variant}.data"


def table_tensor(variant: str) -> str:
    """The name of the graph initializer that holds a variant's token table in formats 1 and 2 (format 3 names the
    graph's arrays as the manifest does: `table`, `scales`, `mapping`, `weights`)."""
    return "int4_table" if variant == "int4" else "table"
