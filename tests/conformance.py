"""Checks squeezebox ONNX files against the ONNX reference tools.

Usage: conformance.py DIR

DIR holds model files (*.onnx), pixels.bin (raw uint8 [N,32,32,3] images)
and expected.json ({"model.onnx": [[p0..p9], ...]}: squeezebox's
probabilities for each image). Every model must pass the ONNX checker and
give, in onnxruntime, probabilities within 1e-4 of squeezebox's and the same
top-1. Prints one line per model; exits non-zero on any failure.
"""
import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort

TOLERANCE = 1e-4
# A top-1 within this margin of the runner-up is a tie that rounding may
# break either way; such images are compared on probabilities only.
TIE = 1e-5


def check(path: pathlib.Path, pixels: np.ndarray, expected: np.ndarray) -> str | None:
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    if names != ["logits", "probabilities"]:
        return f"outputs are {names}"
    probabilities = session.run(["probabilities"], {"pixels": pixels})[0]
    worst = float(np.abs(probabilities - expected).max())
    if worst > TOLERANCE:
        return f"probabilities differ by {worst:.2e}"
    ranked = np.sort(expected, axis=1)
    decisive = ranked[:, -1] - ranked[:, -2] > TIE
    if not decisive.any():
        return "every image is a tie: the comparison of top-1 means nothing"
    flips = (probabilities.argmax(1) != expected.argmax(1)) & decisive
    if flips.any():
        return f"top-1 differs on images {np.nonzero(flips)[0].tolist()}"
    print(f"ok    {path.name}: max |dp| {worst:.1e}, {int(decisive.sum())}/{len(decisive)} decisive top-1 equal")
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
