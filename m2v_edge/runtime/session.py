"""The one place that builds onnxruntime sessions."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from m2v_edge.device_profiles import SessionSettings

_EXECUTION_MODES = {
    "sequential": ort.ExecutionMode.ORT_SEQUENTIAL,
    "parallel": ort.ExecutionMode.ORT_PARALLEL,
}
_OPTIMIZATION_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def session_options(settings: SessionSettings, *, threads: int | None = None) -> ort.SessionOptions:
    """onnxruntime options for a profile's session settings; `threads` overrides the intra-op count."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads is not None else settings.intra_op_threads
    options.inter_op_num_threads = settings.inter_op_threads
    options.execution_mode = _EXECUTION_MODES[settings.execution_mode]
    options.graph_optimization_level = _OPTIMIZATION_LEVELS[settings.graph_optimization_level]
    options.enable_cpu_mem_arena = settings.cpu_mem_arena
    options.enable_mem_pattern = settings.mem_pattern
    spinning = "1" if settings.allow_spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    options.log_severity_level = 3
    return options


def build_session(model_path: Path, settings: SessionSettings, *, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session for one bundle graph."""
    return ort.InferenceSession(
        str(model_path), sess_options=session_options(settings, threads=threads), providers=["CPUExecutionProvider"]
    )
