"""Fresh virtual environments installed offline from a wheelhouse, and a transcript of what ran in them.

Nothing here imports m2v_edge: the environments are checked from the outside, through their own interpreter
and console scripts, with a scrubbed environment (no PYTHONPATH, no pip configuration, no user site, a
throw-away HOME, and proxies pointing at a closed port so that any network access fails loudly).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import venv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CLI_WITH_MODELS = HERE / "cli_with_models.py"
ENCODE = """
import sys, numpy
from m2v_edge import {cls}
model = {cls}(sys.argv[1], variant="int8", profile="generic")
numpy.save(sys.argv[2], numpy.array({call}(sys.argv[3:]), dtype=numpy.float32))
print(repr(getattr(model, "embedder", model)))
"""
TOKENIZING = """
import sys
from m2v_edge import EdgeEmbedder
from m2v_edge.runtime import native
print(native.available(), EdgeEmbedder(sys.argv[1], profile="generic").tokenizing, native.unavailable_reason() or "-")
"""
DEAD_PROXY = "http://127.0.0.1:9"
"""The discard port: nothing listens, so a download attempt fails at once instead of reaching an index."""


def offline_env(home: Path, path: Sequence[Path] = ()) -> dict[str, str]:
    """A device's environment: no pip configuration or index, no network, HOME and caches under `home`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "M2V_EDGE_", "XDG_", "HF_"))
        and key.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    }
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONNOUSERSITE="1",
        http_proxy=DEAD_PROXY,
        https_proxy=DEAD_PROXY,
        HTTP_PROXY=DEAD_PROXY,
        HTTPS_PROXY=DEAD_PROXY,
        no_proxy="127.0.0.1,localhost",  # local servers (Milvus Lite's gRPC) stay reachable
        NO_PROXY="127.0.0.1,localhost",
        LC_ALL="C.UTF-8",
        PATH=os.pathsep.join([*map(str, path), "/usr/local/bin", "/usr/bin", "/bin"]),
    )
    return env


class Transcript:
    """Commands run in clean environments and what they printed, for the end-of-run report."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, label: str, command: str | Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        """Record a command (a shell line as is, or an argv to quote) and the first lines of its output."""
        shown = command if isinstance(command, str) else " ".join(shlex.quote(_short(arg)) for arg in command)
        self.lines.append(f"[{label}] $ {shown}")
        output = (result.stdout + result.stderr).strip()
        self.lines.extend(f"[{label}]   {line}" for line in output.splitlines()[:12])
        if result.returncode:
            self.lines.append(f"[{label}]   (exit {result.returncode})")


def _short(arg: str) -> str:
    """A long absolute path is shown by its last three parts (`.../venv-home/work/vectors.npy`)."""
    if len(arg) > 60 and arg.startswith(os.sep) and "\n" not in arg:
        return os.sep.join(["...", *Path(arg).parts[-3:]])
    return arg


class CleanVenv:
    """A virtual environment made with `python -m venv` and filled with `pip install --no-index`."""

    def __init__(self, root: Path, label: str, transcript: Transcript) -> None:
        self.root = root
        self.label = label
        self.transcript = transcript
        self.home = root.parent / f"{root.name}-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.work = self.home / "work"
        self.work.mkdir(exist_ok=True)
        venv.EnvBuilder(with_pip=False, clear=True).create(root)
        self.python = root / "bin" / "python"

    @property
    def env(self) -> dict[str, str]:
        return offline_env(self.home, [self.root / "bin"])

    def install(
        self, wheelhouse: Path, *requirements: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`pip install --no-index --find-links WHEELHOUSE ...` into this environment (pip run from the host), with
        `env` added to the environment (e.g. `CC`, for an install that builds from an sdist)."""
        argv = [sys.executable, "-m", "pip", "--python", str(self.python), "install", "--quiet", "--no-index",
                "--find-links", str(wheelhouse), *requirements]
        settings = [f"{key}={value}" for key, value in (env or {}).items()]
        shown = [*settings, "pip", "install", "--no-index", "--find-links", "WHEELHOUSE", *map(_short, requirements)]
        return self._run(argv, shown=shown, env=env)

    def uninstall(self, *distributions: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "pip", "--python", str(self.python), "uninstall", "--yes", *distributions]
        return self._run(argv, shown=["pip", "uninstall", "--yes", *distributions])

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one of the environment's console scripts (`m2v-edge`) with the device environment."""
        return self._run([str(self.root / "bin" / program), *args], check=check, shown=[program, *args])

    def py(self, code: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`python -I -c CODE`: isolated, so neither the working folder nor PYTHONPATH can supply m2v_edge."""
        return self._run([str(self.python), "-I", "-c", code, *args], check=check, shown=["python", "-c", code, *args])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`m2v-edge ARGS` with the `package` and `models` commands (see cli_with_models.py)."""
        return self._run([str(self.python), "-I", str(CLI_WITH_MODELS), *args], check=check, shown=["m2v-edge", *args])

    def encode(self, source: str, texts: list[str], *, compat: bool = False) -> np.ndarray:
        """int8 vectors computed here by EdgeEmbedder (or Model2VecEmbeddingFunction) from a path or a name."""
        out = self.work / "vectors.npy"
        code = ENCODE.format(cls="Model2VecEmbeddingFunction", call="model.encode_documents") if compat else \
            ENCODE.format(cls="EdgeEmbedder", call="model.encode")
        self.py(code, source, str(out), *texts)
        return np.load(out)

    def tokenizing(self, source: str) -> tuple[str, str, str]:
        """Whether the native core is available here, the path a bundle takes ("native", "python", "tokenizers"),
        and why the core is unavailable ("-" when it is)."""
        available, path, reason = self.py(TOKENIZING, source).stdout.strip().split(" ", 2)
        return available, path, reason

    def has(self, module: str) -> bool:
        """Whether `module` can be imported here (without importing it)."""
        code = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 3)"
        result = self._run([str(self.python), "-I", "-c", code], check=False)
        assert result.returncode in (0, 3), result.stderr
        return result.returncode == 0

    def site_packages(self) -> Path:
        found = sorted((self.root / "lib").glob("python3*/site-packages"))
        assert len(found) == 1, found
        return found[0]

    def _run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        shown: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` in the work folder with the device environment (plus `env`); record it as `shown` unless that
        is None."""
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=300, cwd=self.work, env={**self.env, **(env or {})},
            check=False,
        )
        if shown is not None:
            self.transcript.add(self.label, shown, result)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result
