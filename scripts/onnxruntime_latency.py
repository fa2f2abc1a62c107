"""Median per-image latency of ONNX files in onnxruntime, on one thread at
batch 1, on one picture: the peer figure beside squeezebox's runtime.

`python scripts/onnxruntime_latency.py --image cat.png model.onnx ...`
prints one JSON object per line: {"model": ..., "median_ms": ...}.

With `--serve` it reads model paths from stdin instead, one JSON string a
line, and answers each with such a line ({"model": ..., "error": ...} if
onnxruntime fails), keeping each model's session for the next request: the
report command (report/) times every file in several rounds, and so loads
and optimises each once. scripts/latency_vs_onnxruntime.py imports the
functions below.
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image


def one_thread_session(model):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def onnxruntime_median_ms(session, pixels, runs, warmup):
    feed = {session.get_inputs()[0].name: pixels}
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def picture(path, height=32, width=32):
    """The picture as a squeezebox model's raw input: uint8 [1, H, W, 3],
    resized to the model's size where it differs (latency does not depend
    on which pixels)."""
    image = Image.open(path).convert("RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)[None]


def model_picture(session, path):
    """`picture` at the size of the session's `[N, H, W, 3]` input."""
    _, height, width, _ = session.get_inputs()[0].shape
    return picture(path, height, width)


def serve(pixels, runs, warmup):
    """Answers each model path read from stdin, one session per model."""
    sessions = {}
    for line in sys.stdin:
        model = json.loads(line)
        try:
            if model not in sessions:
                sessions[model] = one_thread_session(model)
            reply = {"model": model, "median_ms": onnxruntime_median_ms(sessions[model], pixels, runs, warmup)}
        except Exception as e:  # onnxruntime's own errors have no common base
            reply = {"model": model, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*")
    parser.add_argument("--image", required=True, help="an RGB picture, resized to each model's size")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--serve", action="store_true", help="read model paths from stdin (JSON strings)")
    args = parser.parse_args()
    if bool(args.models) == args.serve:
        parser.error("give either model files or --serve")
    pixels = picture(args.image)
    if args.serve:
        serve(pixels, args.runs, args.warmup)
    for model in args.models:
        median = onnxruntime_median_ms(one_thread_session(model), pixels, args.runs, args.warmup)
        print(json.dumps({"model": model, "median_ms": median}), flush=True)


if __name__ == "__main__":
    main()
