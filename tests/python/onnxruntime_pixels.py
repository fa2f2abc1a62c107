"""onnxruntime's probabilities for a squeezebox file, whose graph takes the
raw pixels itself:

    python tests/python/onnxruntime_pixels.py MODEL.onnx PIXELS H W

PIXELS holds uint8 [N,H,W,3] pictures end to end. Prints a JSON list of
each picture's `probabilities`.
"""

import json
import sys

import numpy as np
import onnxruntime as ort


def main():
    model, pixels, h, w = sys.argv[1:]
    x = np.fromfile(pixels, dtype=np.uint8).reshape(-1, int(h), int(w), 3)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    print(json.dumps(session.run(["probabilities"], {"pixels": x})[0].tolist()))


if __name__ == "__main__":
    main()
