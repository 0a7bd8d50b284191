"""m2v-edge: Model2Vec embeddings on edge devices.

`EdgeEmbedder`, `export_model` and `Model2VecEmbeddingFunction` are loaded lazily, so that importing
`m2v_edge` costs nothing and never pulls in the export dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from m2v_edge.errors import M2VEdgeError

__version__ = "0.3.0"
__all__ = ["EdgeEmbedder", "M2VEdgeError", "Model2VecEmbeddingFunction", "__version__", "export_model"]

_LAZY = {
    "EdgeEmbedder": "m2v_edge.runtime",
    "export_model": "m2v_edge.export",
    "Model2VecEmbeddingFunction": "m2v_edge.compat",
}

if TYPE_CHECKING:
    from m2v_edge.compat import Model2VecEmbeddingFunction
    from m2v_edge.export import export_model
    from m2v_edge.runtime import EdgeEmbedder


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'm2v_edge' has no attribute {name!r}")
