"""Device side: load a bundle and encode texts (needs only onnxruntime, numpy and tokenizers)."""

from m2v_edge.runtime.embedder import EdgeEmbedder

__all__ = ["EdgeEmbedder"]
