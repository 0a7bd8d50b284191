"""The bundle format: the one package that both `export` (writer) and `runtime` (reader) import.

A bundle is a folder::

    m2v_edge.json          the manifest (`Manifest`)
    tokenizer.json         the source tokenizer, padding and truncation settings removed
    model.<variant>.onnx   one pooling graph per variant (fp32, fp16, int8, int4): nodes and small constants
    model.<variant>.data   every array the graph reads (token table, scales, mapping, weights), as ONNX external
                           data at page-aligned offsets that the manifest records (format 3): onnxruntime maps
                           them from the file instead of copying them, and `m2v_edge.runtime.table` reads them
                           with numpy, without the graph
    LICENSE, ATTRIBUTION.txt, ...   the source's licence files, copied verbatim

One module per job: `format` (names and version), `files` (file entries, reading bundle files safely), `layout`
(the arrays of a data file), `manifest` (the schema, parsed and written), `checks` (content checks), `verify`
(size, sha256 and content checks before use), `stamps` (the cache of verified file states). Everything other
modules use is importable from here. Only the standard library is used, so that the runtime stays light.
"""

from m2v_edge.bundle.files import FileEntry, sha256_file
from m2v_edge.bundle.format import (
    ATTENTION_MASK,
    CORE_TOKENIZER_FILE,
    DEFAULT_VARIANTS,
    FORMAT_VERSION,
    INPUT_IDS,
    MANIFEST_FILE,
    OUTPUT,
    TOKENIZER_FILE,
    VARIANTS,
    model_file,
    table_file,
    table_tensor,
)
from m2v_edge.bundle.layout import (
    ARRAY_NAMES,
    DATA_ALIGNMENT,
    INT4_PACKING,
    ArrayEntry,
    Int4Packing,
    TableFile,
)
from m2v_edge.bundle.manifest import (
    MAX_MANIFEST_BYTES,
    CoreTokenizer,
    Manifest,
    SourceInfo,
    read_manifest,
    write_manifest,
)
from m2v_edge.bundle.verify import CHECKS_VERSION, verify_data, verify_file, verify_model, verify_tokenizer

__all__ = [
    "ARRAY_NAMES",
    "ATTENTION_MASK",
    "CHECKS_VERSION",
    "CORE_TOKENIZER_FILE",
    "DATA_ALIGNMENT",
    "DEFAULT_VARIANTS",
    "FORMAT_VERSION",
    "INPUT_IDS",
    "INT4_PACKING",
    "MANIFEST_FILE",
    "MAX_MANIFEST_BYTES",
    "OUTPUT",
    "TOKENIZER_FILE",
    "VARIANTS",
    "ArrayEntry",
    "CoreTokenizer",
    "FileEntry",
    "Int4Packing",
    "Manifest",
    "SourceInfo",
    "TableFile",
    "model_file",
    "read_manifest",
    "sha256_file",
    "table_file",
    "table_tensor",
    "verify_data",
    "verify_file",
    "verify_model",
    "verify_tokenizer",
    "write_manifest",
]
