"""Random mutations of real tokenizer.m2v files, each mapped by the native core and, when the loader accepts it,
used to tokenize a set of texts: never a crash, only ids below the file's id_limit, else a BundleError.

The files are loaded in a child process, so that a crash (a signal) fails the test instead of ending the run; the
child names each file before it opens it, so a failure names the file that did it (kept under the test's tmp_path).
The mutations are seeded: every run tries the same files. libFuzzer does the same at much greater depth (fuzz/).
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.m2v_file import ENTRY, HEADER
from helpers.native_files import compiled, every_op_unigram, every_op_wordpiece

from m2v_edge.runtime import native

if os.environ.get(native.SWITCH) == "0":
    pytest.skip("the native core is turned off (M2V_EDGE_NATIVE=0)", allow_module_level=True)

MUTANTS_PER_FILE = 400
INTERESTING = (0, 1, 7, 8, 0xFF, 0x100, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)

CHILD = r"""
import json, sys
from pathlib import Path
from m2v_edge.errors import BundleError
from m2v_edge.runtime.native import NativeTokenizer

texts = json.loads(sys.argv[2])
accepted = refused = 0
for path in sorted(Path(sys.argv[1]).iterdir()):
    print(path.name, flush=True)
    try:
        tokenizer = NativeTokenizer(path, 16 if path.name.endswith("7.m2v") else None, threads=2)
    except BundleError as error:
        assert "is damaged" in str(error) and "\n" not in str(error), error
        refused += 1
        continue
    accepted += 1
    batch = tokenizer.tokenize(texts * 4)  # over 16 KiB: shared between two threads
    singles = [i for text in texts for i in tokenizer.tokenize_one(text)] * 4
    assert all(0 <= i < tokenizer.id_limit for i in singles), f"{path.name}: an id outside 0..{tokenizer.id_limit}"
    assert batch.ids.tolist() == singles, f"{path.name}: batch and single ids differ"
print(json.dumps({"accepted": accepted, "refused": refused}))
"""

TEXTS = [
    "", "the quick brown fox jumps over the lazy dog", "Hello, WORLD! -- a|b ``quoted'' 12345 x--y",
    "“curly” café naïve Über straße e\u0301 ﬁne Ａ ① ™", "中文字符 日本語 한국어 привет שלום مرحبا",
    "[CLS] fox [SEP] [MASK][PAD] <unk> [[x]]the ｑｕｉｃｋ ## quick brown", "😀🎉 👨‍👩‍👧 \x01\x1b[0m\x7f \t\r\n\u00a0\u3000",
    " ".join(["the lazy dog ▁▁ zürich 東京 🦊 fox!"] * 150),
]


def mutant(data: bytes, rng: random.Random) -> bytes:
    """One random change: bits flipped, an aligned word set to a boundary value (often in the header and section
    table, which every offset comes from), a cut, or a block copied elsewhere; the header's size field then usually
    made to match, so that the change reaches the checks behind it."""
    out = bytearray(data)
    table_end = HEADER.size + ENTRY.size * struct.unpack_from("<I", data, 12)[0]
    choice = rng.randrange(4)
    if choice == 0:
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    elif choice == 1:
        for _ in range(rng.randint(1, 3)):
            end = table_end if rng.random() < 0.5 else len(out) - 4
            at = rng.randrange(0, end, 4)
            value = rng.choice([*INTERESTING, len(data), len(data) + 8, rng.getrandbits(32)]) & 0xFFFFFFFF
            struct.pack_into("<I", out, at, value)
    elif choice == 2:
        del out[rng.randrange(8, len(out)) :]
    else:
        length = rng.randint(1, 256)
        start, target = rng.randrange(len(out) - length), rng.randrange(len(out) - length)
        out[target : target + length] = out[start : start + length]
    if rng.random() < 0.8 and len(out) >= 24:
        struct.pack_into("<Q", out, 16, len(out))
    return bytes(out)


def test_random_mutations_never_crash_the_process(bundle: Path, tmp_path: Path) -> None:
    originals = {
        "wordpiece": (bundle / "tokenizer.m2v").read_bytes(),
        "wordpiece-every-op": compiled(every_op_wordpiece()),
        "unigram-every-op": compiled(every_op_unigram()),
    }
    folder = tmp_path / "mutants"
    folder.mkdir()
    rng = random.Random(16)
    for name, data in originals.items():
        (folder / f"{name}-original.m2v").write_bytes(data)
        for index in range(MUTANTS_PER_FILE):
            (folder / f"{name}-{index:04d}-7.m2v" if index % 10 == 7 else folder / f"{name}-{index:04d}.m2v"
             ).write_bytes(mutant(data, rng))
    child = subprocess.run([sys.executable, "-c", CHILD, str(folder), json.dumps(TEXTS)], capture_output=True,
                           text=True, timeout=600, check=False)
    lines = child.stdout.splitlines()
    assert child.returncode == 0, (
        f"the child ended with {child.returncode} on {folder / lines[-1] if lines else '?'}:\n{child.stderr[-3000:]}"
    )
    counts = json.loads(lines[-1])
    total = len(originals) * (MUTANTS_PER_FILE + 1)
    assert counts["accepted"] + counts["refused"] == total
    # Both outcomes are common: the mutants reach the tokenizer as well as the loader's checks.
    assert counts["accepted"] >= total // 20 and counts["refused"] >= total // 20, counts  # 153 and 1,050 now
