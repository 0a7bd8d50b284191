"""Import weight: the runtime must not pull in export or test dependencies, and `m2v_edge` alone pulls in nothing.

Each check runs in a fresh interpreter, so modules imported by other tests cannot hide an import.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

RUNTIME_MUST_NOT_IMPORT = ("onnx", "huggingface_hub", "safetensors", "torch", "model2vec", "pymilvus", "tqdm",
                           "starlette", "uvicorn", "anyio", "orjson")


def _modules_after(statement: str) -> set[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_runtime_imports_no_export_dependencies() -> None:
    modules = _modules_after("import m2v_edge.runtime")
    assert "m2v_edge.runtime" in modules and "onnxruntime" in modules  # the check itself works
    assert _top_level(modules).isdisjoint(RUNTIME_MUST_NOT_IMPORT), sorted(
        _top_level(modules) & set(RUNTIME_MUST_NOT_IMPORT)
    )
    assert not any(name.startswith("m2v_edge.export") for name in modules)


def test_lazy_top_level_embedder_imports_no_export_dependencies() -> None:
    modules = _modules_after("from m2v_edge import EdgeEmbedder")
    assert _top_level(modules).isdisjoint(RUNTIME_MUST_NOT_IMPORT)


def test_package_alone_imports_neither_onnxruntime_nor_onnx() -> None:
    modules = _modules_after("import m2v_edge, m2v_edge.errors, m2v_edge.bundle")
    assert _top_level(modules).isdisjoint({"onnxruntime", "onnx", *RUNTIME_MUST_NOT_IMPORT})


@pytest.mark.parametrize("name", ["EdgeEmbedder", "export_model", "M2VEdgeError", "__version__"])
def test_lazy_names_resolve(name: str) -> None:
    import m2v_edge

    assert getattr(m2v_edge, name) is not None


def test_unknown_attribute() -> None:
    import m2v_edge

    with pytest.raises(AttributeError):
        m2v_edge.no_such_name  # noqa: B018


def _import_graph(package: Path) -> dict[str, set[str]]:
    """Which package modules each module imports, anywhere in its file (inside functions and TYPE_CHECKING blocks
    too). Importing a name from a parent package's `__init__` counts as importing that package."""
    files = {".".join(p.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__"): p
             for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*here.split(".")[: len(here.split(".")) - node.level + 1], *filter(None, [base])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(f"{target}."):
                    graph[name].add(target)
    return graph


def test_no_import_cycles_anywhere_in_the_package() -> None:
    """A cycle hidden in a function-level import is still a cycle: each module's imports lead back to it nowhere."""
    import m2v_edge

    graph = _import_graph(Path(m2v_edge.__file__).parent)
    assert "m2v_edge.bundle.verify" in graph and "m2v_edge.bundle.checks" in graph["m2v_edge.bundle.verify"]
    cycles = []
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module == start:
                cycles.append(start)
                break
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
    assert cycles == [], f"modules that import themselves through others: {cycles}"


def test_the_table_reader_needs_only_numpy_and_the_standard_library() -> None:
    """`m2v_edge.runtime.table` reads data files for code that does not run onnxruntime (model2vec's
    `encode_as_sequence`, a native pooling core): its own imports are numpy, the standard library and the bundle
    format's package (itself standard library only)."""
    import m2v_edge

    package = Path(m2v_edge.__file__).parent
    graph = _import_graph(package)
    reached, todo = set(), ["m2v_edge.runtime.table"]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(graph[module])
    assert reached >= {"m2v_edge.runtime.table", "m2v_edge.bundle"}
    outside = set()
    for module in reached:
        path = package.parent.joinpath(*module.split(".")).with_suffix(".py")
        path = path if path.is_file() else path.with_suffix("") / "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                outside |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                outside.add((node.module or "").split(".")[0])
    assert outside - set(sys.stdlib_module_names) - {"__future__"} == {"m2v_edge", "numpy"}
