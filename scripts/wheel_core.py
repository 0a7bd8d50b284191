"""Check that m2v-edge wheels hold the native core, compiled for the machine their platform tag names.

    python scripts/wheel_core.py WHEEL...      # `make dist` runs it on the x86-64 and the aarch64 wheel

setup.py builds `m2v_edge._core` as an optional extension, so that an install where nothing can compile it still
works (through tokenizers). The price: a wheel build whose compile failed still writes a wheel, only without the
core. This refuses such a wheel, and one whose core is an ELF file for another machine than its tag says.
Standard library and `packaging` only (pip and build bring it).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from packaging.utils import parse_wheel_filename

ELF_MACHINES = {"x86_64": 62, "aarch64": 183}
"""Platform tag suffix -> ELF e_machine (the ELF specification's EM_X86_64 and EM_AARCH64)."""


def core_machine(wheel: Path) -> tuple[str, int]:
    """The core's path in `wheel` and the ELF machine it was compiled for; AssertionError if there is none."""
    with zipfile.ZipFile(wheel) as archive:
        cores = [name for name in archive.namelist() if name.startswith("m2v_edge/_core.") and name.endswith(".so")]
        assert len(cores) == 1, f"{wheel.name}: expected one m2v_edge/_core.*.so, found {cores or 'none'}"
        header = archive.read(cores[0])[:20]
    assert header[:4] == b"\x7fELF", f"{wheel.name}: {cores[0]} is not an ELF file"
    return cores[0], int.from_bytes(header[18:20], "little")


def check(wheel: Path) -> str:
    """One line describing `wheel`'s core; AssertionError if it is missing or built for another machine."""
    _, _, _, tags = parse_wheel_filename(wheel.name)
    machines = {machine for tag in tags for machine in ELF_MACHINES if tag.platform.endswith("_" + machine)}
    assert len(machines) == 1, f"{wheel.name}: not a wheel for one of {sorted(ELF_MACHINES)}"
    (machine,) = machines
    core, found = core_machine(wheel)
    assert found == ELF_MACHINES[machine], f"{wheel.name}: {core} is for ELF machine {found}, not {machine}"
    return f"{wheel.name}: {core} ({machine}), wheel {wheel.stat().st_size:,} bytes"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        lines = [check(Path(path)) for path in argv]
    except AssertionError as error:
        print(f"wheel_core.py: error: {error} (see the compiler output of the wheel build)", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
