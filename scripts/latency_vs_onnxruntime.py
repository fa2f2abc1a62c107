"""Median per-image latency of the same ONNX files in squeezebox's runtime
(through label-image) and in onnxruntime, both on one thread at batch 1,
measured in one run and printed with their ratio.

Timings on a shared machine drift, so the two runtimes take turns: each round
times squeezebox, then onnxruntime, and the figure kept for each is the median
over rounds of its per-round medians.

Run it through scripts/bench.sh, which builds label-image and sets up the
Python environment first.
"""

import argparse
import json
import statistics
import subprocess

from onnxruntime_latency import model_picture, one_thread_session, onnxruntime_median_ms


def squeezebox_median_ms(label_image, model, image, runs, warmup):
    out = subprocess.run(
        [label_image, "--model", model, "--json", "--threads", "1",
         "--runs", str(runs), "--warmup", str(warmup), image],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["latency"]["batch1"]["median_ms"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--image", required=True, help="an RGB picture, resized to each model's size")
    parser.add_argument("--label-image", required=True, help="the label-image binary")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows = []
    for model in args.models:
        session = one_thread_session(model)
        pixels = model_picture(session, args.image)
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(squeezebox_median_ms(args.label_image, model, args.image,
                                             args.runs, args.warmup))
            theirs.append(onnxruntime_median_ms(session, pixels, args.runs, args.warmup))
        sb, ort_ms = statistics.median(ours), statistics.median(theirs)
        rows.append({"model": model, "squeezebox_ms": sb, "onnxruntime_ms": ort_ms,
                     "ratio": sb / ort_ms})

    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| model | squeezebox median ms | onnxruntime median ms | ratio |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['squeezebox_ms']:.3f} | {r['onnxruntime_ms']:.3f} "
              f"| {r['ratio']:.2f} |")
    print(f"\nOne thread, batch 1, {args.rounds} alternating rounds of {args.runs} runs "
          f"after {args.warmup} warm-up runs; ratio = squeezebox / onnxruntime.")


if __name__ == "__main__":
    main()
