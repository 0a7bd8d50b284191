"""Workstation side: turn a Model2Vec model into an m2v-edge bundle (needs the `export` extra)."""

from m2v_edge.export.exporter import DEFAULT_VARIANTS, FROM_CONFIG, export_model

__all__ = ["DEFAULT_VARIANTS", "FROM_CONFIG", "export_model"]
