"""The native tokenizing core, m2v_edge._core, built from m2v_edge/_native/*.c; everything else is in pyproject.toml.

The extension is optional: where it cannot be compiled, m2v-edge installs without it and tokenizes through
tokenizers (the same ids); `m2v-edge profile detect` says which path a bundle takes.
"""

from pathlib import Path

from setuptools import Extension, setup

NATIVE = Path("m2v_edge") / "_native"

setup(
    ext_modules=[
        Extension(
            "m2v_edge._core",
            sources=sorted(path.as_posix() for path in NATIVE.glob("*.c")),
            depends=sorted(path.as_posix() for path in NATIVE.glob("*.h")),
            extra_compile_args=["-O2", "-g0", "-std=c11", "-pthread", "-fvisibility=hidden"],
            extra_link_args=["-pthread", "-Wl,--strip-all"],
            libraries=["m"],
            optional=True,
        )
    ]
)
