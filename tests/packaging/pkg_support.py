"""Constants and data shared by the packaging tests' fixtures and tests (conftest.py cannot be imported)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from clean_venvs import Transcript

REPO = Path(__file__).resolve().parents[2]
POTION = REPO / "models" / "potion-base-8M"
MODEL_NAME = "potion-base-8m"
MODEL_DISTRIBUTION = "m2v-edge-model-potion-base-8m"
SHIPPED_VARIANTS = ("int8", "fp16")
WHEEL_TARGET = 100_000
"""Issue 9's target for the m2v-edge wheel (no models inside), in bytes; set before the wheels held a native core."""
AARCH64_PLATFORM = "manylinux_2_34_aarch64"
"""The aarch64 wheel's platform tag (scripts/arm64/common.sh says why 2.34)."""
REPORT_FILE = Path(os.environ.get("M2V_EDGE_PACKAGING_REPORT") or Path(tempfile.gettempdir()) / "packaging_report.txt")


@dataclass(frozen=True)
class Dist:
    """What `make dist` leaves in dist/, and the bundle the model wheel was made from."""

    folder: Path
    wheel: Path
    """The m2v-edge wheel for this machine (x86-64)."""
    aarch64_wheel: Path
    """The m2v-edge wheel cross-compiled for aarch64 (scripts/arm64/build_wheel.sh)."""
    sdist: Path
    model_wheel: Path
    bundle: Path

    @property
    def shipped_path(self) -> str:
        """The tokenizing path the shipped model takes where m2v-edge has its core: native where the export wrote
        tokenizer.m2v (always, unless M2V_EDGE_NATIVE=0 turned the core off for the test run), else python."""
        return "native" if (self.bundle / "tokenizer.m2v").is_file() else "python"


@dataclass
class Report:
    """Sizes and clean-venv transcripts, printed in the terminal summary."""

    sizes: list[str] = field(default_factory=list)
    transcript: Transcript = field(default_factory=Transcript)

    def size(self, label: str, size: int, note: str = "") -> None:
        shown = f"{size / 1e6:.2f} MB" if size >= 1_000_000 else f"{size / 1e3:.1f} kB"
        self.sizes.append(f"{label:<70} {size:>11,} bytes  {shown:>9}{'  ' + note if note else ''}")


REPORT = Report()


def run_host(
    *argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command with this interpreter's environment (the workstation, which may use the package index), plus
    `env`."""
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=600, cwd=cwd,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **(env or {})}, check=False,
    )
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result
