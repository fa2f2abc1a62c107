"""onnxruntime's probabilities for a foreign classifier, given raw pixels
and the normalisation squeezebox puts in the graph on import:

    python tests/python/onnxruntime_probabilities.py MODEL.onnx PIXELS H W \
        MEAN_R,G,B STD_R,G,B

PIXELS holds uint8 [N,H,W,3] pictures end to end. Prints a JSON list of
each picture's probabilities: the model's output, through a softmax unless
the graph already ends in one.
"""

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model, pixels, h, w, mean, std = sys.argv[1:]
    h, w = int(h), int(w)
    mean = np.array([float(v) for v in mean.split(",")], np.float32)
    std = np.array([float(v) for v in std.split(",")], np.float32)
    px = np.fromfile(pixels, dtype=np.uint8).reshape(-1, h, w, 3)
    x = ((px.astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]
    if onnx.load(model).graph.node[-1].op_type != "Softmax":
        e = np.exp(out - out.max(axis=1, keepdims=True))
        out = e / e.sum(axis=1, keepdims=True)
    print(json.dumps(out.tolist()))


if __name__ == "__main__":
    main()
