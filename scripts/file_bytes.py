"""Where a model file's bytes go: each part's serialized size, summed by kind.

    .venv/bin/python scripts/file_bytes.py models/squeeze1.p80.tw4.int8.w4.onnx

docs/compression.md quotes its output for the smallest files. Kinds:
packed code streams, kernel values stored as they are, the kernels' small
parts (codebooks, code ranges, sizes and shapes), per-channel scales,
biases and zero points, the preprocessing's constants, nodes, and each
metadata entry.
"""
import collections
import sys

import onnx

SMALL_PARTS = ("/codebook", "/code_start", "/code_end", "/numel", "/shape", "/dims")


def kind(t: onnx.TensorProto) -> str:
    name = t.name
    stream = name.split("/")[0] in ("codes", "gap_codes")
    if stream and name.endswith("/stream"):
        return "code streams"
    if stream:
        return "stream constants"
    if name.endswith(SMALL_PARTS):
        return "kernels' small parts"
    if name.endswith("/values") or len(t.dims) >= 2:
        return "kernel values"
    if name.startswith("pre.") or name.startswith("sparse/"):
        return "other constants"
    return "scales, biases, zero points"


def main(path: str) -> None:
    model = onnx.load(path)
    total = len(model.SerializeToString())
    parts = collections.Counter()
    for t in model.graph.initializer:
        parts[kind(t)] += t.ByteSize()
    parts["nodes"] = sum(n.ByteSize() for n in model.graph.node)
    for p in model.metadata_props:
        parts[f"metadata: {p.key}"] = p.ByteSize()
    print(f"{path}: {total:,} bytes")
    for name, size in parts.most_common():
        print(f"  {name:32} {size:>8,}")
    rest = total - sum(parts.values())
    print(f"  {'framing and the rest':32} {rest:>8,}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: file_bytes.py MODEL.onnx")
    main(sys.argv[1])
