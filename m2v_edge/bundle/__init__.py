"""The bundle format: the one package that both `export` (writer) and `runtime` (reader) import.

A bundle is a folder::

    m2v_edge.json          the manifest (`Manifest`)
    tokenizer.json         the source tokenizer, padding and truncation settings removed
    model.<variant>.onnx   one pooling graph per variant (fp32, fp16, int8, int4)
    model.<variant>.data   its token table, the graph's only ONNX external data (format 2): onnxruntime maps it
                           from the file instead of parsing and copying it out of the graph
    LICENSE, ATTRIBUTION.txt, ...   the source's licence files, copied verbatim

One module per job: `format` (names and version), `manifest` (the schema, parsed and written), `files` (reading
bundle files safely), `verify` (size, sha256 and content checks before use), `checks` (the content checks),
`stamps` (the cache of verified file states). Everything other modules use is importable from here. Only the
standard library is used, so that the runtime stays dependency-light.
"""

from m2v_edge.bundle.files import sha256_file
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
from m2v_edge.bundle.manifest import (
    MAX_MANIFEST_BYTES,
    CoreTokenizer,
    FileEntry,
    Manifest,
    SourceInfo,
    read_manifest,
    write_manifest,
)
from m2v_edge.bundle.verify import CHECKS_VERSION, verify_file, verify_model, verify_tokenizer

__all__ = [
    "ATTENTION_MASK",
    "CHECKS_VERSION",
    "CORE_TOKENIZER_FILE",
    "DEFAULT_VARIANTS",
    "FORMAT_VERSION",
    "INPUT_IDS",
    "MANIFEST_FILE",
    "MAX_MANIFEST_BYTES",
    "OUTPUT",
    "TOKENIZER_FILE",
    "VARIANTS",
    "CoreTokenizer",
    "FileEntry",
    "Manifest",
    "SourceInfo",
    "model_file",
    "read_manifest",
    "sha256_file",
    "table_file",
    "table_tensor",
    "verify_file",
    "verify_model",
    "verify_tokenizer",
    "write_manifest",
]
