"""Seed corpora for the fuzzers in this folder: real tokenizer files written by m2v-edge's exporter, and real texts.

    python fuzz/make_seeds.py OUT [--shared ../shared]

writes
  OUT/files/*.m2v       valid tokenizer files the text fuzzer tokenizes with (chosen by the text's first byte):
                        potion-base-8M's WordPiece and tokenlearn-static-model's 276k-piece Unigram with its
                        Precompiled charsmap, both through the export's decision (`write_core_tokenizer`, checked
                        against tokenizers on the probe texts), and small files compiled by the exporter
                        (`compile_tokenizer`) that use every normalizer and pre-tokenizer op, added tokens with each
                        flag, byte fallback and a small charsmap
  OUT/vocab/            the loader fuzzer's seeds: the small files, and truncated and bit-flipped copies of them
  OUT/text/             the text fuzzer's seeds: Debian descriptions in eleven languages, added-token texts, edge cases,
                        each once for each file
  OUT/pool/             the pooler fuzzer's seeds (see fuzz_pool.c for their layout)

The same arguments give the same bytes. Needs the dev extra (tokenizers, tokenlearn-static-model) and the core.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import struct
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

from tokenizers import AddedToken, Tokenizer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.native_files import compiled, every_op_unigram, every_op_wordpiece
from helpers.tiny_models import EDGE_TEXTS, build_tokenizer

from m2v_edge.export.tokenizer_core import write_core_tokenizer

POTION = REPO / "models" / "potion-base-8M" / "tokenizer.json"
SURROGATE = re.compile("[\ud800-\udfff]")
"""Lone surrogates: the runtime gives the core U+FFFD for each (UTF-8 cannot hold them)."""
TEXTS_PER_FILE = 60
"""Debian texts taken from each shared data file (queries and documents alternate)."""


# ------------------------------------------------------------------------------------------------ tokenizer files


def exported(tokenizer_json: dict, id_limit: int) -> bytes:
    """tokenizer.m2v as an export writes it (refused exports raise: the fuzzers need the real file)."""
    spec = dict(tokenizer_json, padding=None, truncation=None)
    with TemporaryDirectory() as folder:
        path = Path(folder) / "tokenizer.json"
        path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        decision = write_core_tokenizer(Path(folder), spec=spec, tokenizer=Tokenizer.from_file(str(path)),
                                        id_limit=id_limit, max_length=512)
        if decision.file is None:
            raise SystemExit(f"the export refused a seed tokenizer: {decision.reason}")
        return (Path(folder) / decision.file.file).read_bytes()


def tokenlearn_json() -> dict:
    sys.path.insert(0, str(REPO))
    from bench.multilingual_model import tokenlearn_tokenizer_file

    return json.loads(tokenlearn_tokenizer_file().read_text(encoding="utf-8"))


def small_unigram(tokenlearn: dict) -> Tokenizer:
    """tokenlearn's pipeline (real Precompiled charsmap, WhitespaceSplit + Metaspace) over its first 3,000 pieces,
    with byte fallback and added tokens carrying each flag."""
    spec = json.loads(json.dumps(tokenlearn))
    pieces = spec["model"]["vocab"][:3000]
    pieces += [[f"<0x{byte:02X}>", -20.0] for byte in range(256)]
    spec["model"].update(vocab=pieces, byte_fallback=True)
    tokenizer = Tokenizer.from_str(json.dumps(spec))
    tokenizer.add_tokens([AddedToken("<mask>", single_word=True, lstrip=True, rstrip=True, normalized=False),
                          AddedToken("ｑｕｉｃｋ", normalized=True, lstrip=True),
                          AddedToken("fox!", normalized=True, rstrip=True, single_word=True)])
    return tokenizer


# ---------------------------------------------------------------------------------------------------- corpora


def damaged(data: bytes, rng: random.Random) -> list[bytes]:
    """Truncated copies (cut in the header, the section table, a section) and copies with bits flipped."""
    cuts = [7, 31, 40, len(data) // 3, len(data) - 8, len(data) - 1]
    out = [data[:cut] for cut in cuts if 0 < cut < len(data)]
    for _ in range(6):
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        out.append(bytes(flipped))
    return out


def texts(shared: Path) -> list[str]:
    """Real texts: English and multilingual Debian descriptions, added-token texts, the tests' edge cases."""
    found: list[str] = []
    for name in ("debian-descriptions-public.jsonl", "debian-descriptions-multilingual-public.jsonl"):
        path = shared / "data" / name
        if not path.is_file():
            path = REPO / "bench" / "data" / name
        if not path.is_file():
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()[:TEXTS_PER_FILE // 2]]
        found += [text for row in rows for text in (row["query"], row["document"][:2000])]
    found += ["[CLS] the fox [SEP] [MASK][PAD]", "<mask> <unk> <pad>", "ｑｕｉｃｋ fox! fox!x [[x]]the",
              "a -- b ``c`` 12345 x|y ①ﬁ™ e\u0301", "  \u3000 quick brown  ##in "]
    found += [text for name, text in EDGE_TEXTS.items() if name != "ten_mb"]
    return [text[:4000] for text in found]


def pool_seeds() -> list[bytes]:
    """Pooler inputs (layout in fuzz_pool.c): consistent arrays of each table kind, with and without mapping and
    weights, normalized or not: 6 rows of 3 dimensions (int4: 2 blocks of 2)."""
    rows, dim, block, blocks = 6, 3, 2, 2
    table_bytes = {0: rows * dim * 4, 1: rows * dim * 2, 2: rows * dim, 3: rows * blocks * block // 2}
    scales_bytes = {0: 0, 1: 0, 2: rows * 4, 3: rows * blocks * 2}
    seeds = []
    for kind in range(4):
        for mapped, weighted in ((False, False), (True, False), (False, True), (True, True)):
            ids = 10 if mapped else rows
            flags = mapped * 1 | weighted * 2 | (scales_bytes[kind] > 0) * 4 | (kind % 2) * 8
            header = struct.pack("<BBHHHHHHHQQq", kind, flags, table_bytes[kind], scales_bytes[kind],
                                 ids if mapped else 0, ids if weighted else 0, block, blocks, dim, rows, ids, 1)
            table = bytes((31 * i + kind) % 256 for i in range(table_bytes[kind] + scales_bytes[kind]))
            mapping = struct.pack(f"<{ids}q", *(i % rows for i in range(ids))) if mapped else b""
            weights = struct.pack(f"<{ids}f", *(0.5 + i for i in range(ids))) if weighted else b""
            tokens = struct.pack("<8h", 0, 1, 2, 3, 5, 1, 4, 2)
            seeds.append(header + table + mapping + weights + tokens)
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = parser.parse_args()
    rng = random.Random(16)
    tokenlearn = tokenlearn_json()
    large = {
        "potion-wordpiece": exported(json.loads(POTION.read_text(encoding="utf-8")), 29528),
        "tokenlearn-unigram": exported(tokenlearn, len(tokenlearn["model"]["vocab"])),
    }
    small = {
        "tiny-wordpiece": exported(json.loads(build_tokenizer("wordpiece").to_str()), 512),
        "tiny-unigram": exported(json.loads(build_tokenizer("unigram").to_str()), 512),
        "unigram-charsmap-bytes": compiled(small_unigram(tokenlearn)),
        "unigram-every-op": compiled(every_op_unigram()),
        "wordpiece-every-op": compiled(every_op_wordpiece()),
    }
    for folder in ("files", "vocab", "text", "pool"):
        (args.out / folder).mkdir(parents=True, exist_ok=True)
    for name, data in {**large, **small}.items():
        (args.out / "files" / f"{name}.m2v").write_bytes(data)
    for name, data in small.items():
        (args.out / "vocab" / f"{name}.m2v").write_bytes(data)
        for index, copy in enumerate(damaged(data, rng)):
            (args.out / "vocab" / f"{name}-damaged{index}.m2v").write_bytes(copy)
    for index, text in enumerate(texts(args.shared)):
        for file in range(len(large) + len(small)):  # each text with each file (fuzz_text.c: the first byte)
            selector = bytes([file | (index % 16) << 4])
            data = selector + SURROGATE.sub("\ufffd", text).encode("utf-8")
            (args.out / "text" / f"text{index:03d}-file{file}.txt").write_bytes(data)
    for index, seed in enumerate(pool_seeds()):
        (args.out / "pool" / f"pool{index:02d}.bin").write_bytes(seed)
    sizes = ", ".join(f"{name} {len(data) // 1024} KiB" for name, data in {**large, **small}.items())
    print(f"seeds in {args.out}: {sizes}")


if __name__ == "__main__":
    main()
