"""Checks compressed squeezebox models against the ONNX reference tools.

Usage: quantize_conformance.py DIR

DIR holds model files (*.onnx), pixels.bin (raw uint8 [N,32,32,3] images)
and expected.json ({"model.onnx": [[p0..p9], ...]}: squeezebox's (tract's)
probabilities for each image). Every model must pass the ONNX checker (full
check) and give, in onnxruntime, the same top-1 on every image where tract's
top-1 leads by a clear margin, and probabilities close to tract's. Integer
kernels may round differently in the two runtimes (one step of an 8-bit
value), hence a looser tolerance for int8 models than for float ones.

Models with uint8 activations are held to a looser tolerance: onnxruntime's
x86 uint8 x int8 convolution kernels (vpmaddubsw) saturate 16-bit sums on
CPUs without VNNI, so its answers differ from the exact integer result by
many steps (checked against a numpy reference of the first QLinearConv:
int8 activations match exactly, uint8 ones differ by up to 141 steps).
Prints one line per model; exits non-zero on any failure.
"""
import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort

FLOAT_TOLERANCE = 1e-3
INT8_TOLERANCE = 0.03
# onnxruntime's saturating uint8 kernels (see above).
UINT8_TOLERANCE = 0.3
# A top-1 ahead of the runner-up by less than this may flip on rounding.
MARGIN = 0.02
UINT8_MARGIN = 0.2


def metadata(model: onnx.ModelProto) -> dict:
    return {p.key: p.value for p in model.metadata_props}


def variant(model: onnx.ModelProto) -> str:
    return metadata(model).get("variant", "f32")


def uint8_activations(model: onnx.ModelProto) -> bool:
    details = json.loads(metadata(model).get("quantization", "{}"))
    return details.get("activations") == "uint8"


def check(path: pathlib.Path, pixels: np.ndarray, expected: np.ndarray) -> str | None:
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    kind = variant(model)
    # Static int8 anywhere in the steps (p75.int8, p75.int8.w4).
    integer = "int8" in kind.split(".")
    tolerance = INT8_TOLERANCE if integer else FLOAT_TOLERANCE
    margin = MARGIN
    if integer and uint8_activations(model):
        kind, tolerance, margin = "int8, uint8 activations: onnxruntime saturates", UINT8_TOLERANCE, UINT8_MARGIN
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    if names != ["logits", "probabilities"]:
        return f"outputs are {names}"
    probabilities = session.run(["probabilities"], {"pixels": pixels})[0]
    worst = float(np.abs(probabilities - expected).max())
    if worst > tolerance:
        return f"probabilities differ by {worst:.2e} (tolerance {tolerance:.0e})"
    ranked = np.sort(expected, axis=1)
    decisive = ranked[:, -1] - ranked[:, -2] > margin
    if decisive.sum() < len(decisive) // 3:
        return f"only {int(decisive.sum())}/{len(decisive)} images have a clear top-1: the comparison means little"
    flips = (probabilities.argmax(1) != expected.argmax(1)) & decisive
    if flips.any():
        return f"top-1 differs on images {np.nonzero(flips)[0].tolist()}"
    ops = sorted({n.op_type for n in model.graph.node if n.op_type.startswith(("QLinear", "Quantize", "Dequantize"))})
    print(f"ok    {path.name} ({kind}): max |dp| {worst:.1e}, {int(decisive.sum())}/{len(decisive)} clear top-1 equal; {', '.join(ops) or 'float ops only'}")
    return None


def main() -> int:
    folder = pathlib.Path(sys.argv[1])
    pixels = np.frombuffer((folder / "pixels.bin").read_bytes(), dtype=np.uint8).reshape(-1, 32, 32, 3)
    expected = json.loads((folder / "expected.json").read_text())
    failures = 0
    for name, probabilities in sorted(expected.items()):
        try:
            problem = check(folder / name, pixels, np.array(probabilities, dtype=np.float32))
        except Exception as error:  # the checker and onnxruntime raise many kinds
            problem = f"{type(error).__name__}: {error}"
        if problem:
            failures += 1
            print(f"FAIL  {name}: {problem}")
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}: {len(expected) - failures} passed, {failures} failed")
    return 1 if failures or not expected else 0


if __name__ == "__main__":
    sys.exit(main())
