#!/usr/bin/env python3
"""Compares label-image --json reports from several builds of the same model.

    compare_labels.py [--tol 1e-4] REFERENCE NAME=OTHER ...

REFERENCE and each OTHER are a report or a directory of reports (merged).

Each report must label the same pictures with every class (--top-k = the
number of classes). A build passes when, for every picture, its top-1 label
is the reference's and each class's probability is within --tol of the
reference's. Prints one line per build (max |dp|) and, on failure, each
difference; exits 1 when any build fails, 2 when a report cannot be read.
"""

import argparse
import glob
import json
import os
import sys


def unreadable(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def read(path):
    """{picture: (top-1 label, {label: probability})} from a report, or from
    every *.json report in a directory."""
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "*.json")))
        if not files:
            unreadable(f"{path}: no reports")
        return {k: v for f in files for k, v in read(f).items()}
    try:
        with open(path) as f:
            report = json.load(f)
        return {
            image["file"]: (
                image["top"][0]["label"],
                {g["label"]: g["probability"] for g in image["top"]},
            )
            for image in report["images"]
        }
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        unreadable(f"{path}: not a label-image --json report with pictures ({e!r})")


def compare(reference, other, tol):
    """Max |dp| over all pictures and classes, and the differences found."""
    problems, worst = [], 0.0
    if set(other) != set(reference):
        problems.append(f"pictures differ: {sorted(set(reference) ^ set(other))}")
    for file in sorted(set(reference) & set(other)):
        (top_ref, ref), (top, probs) = reference[file], other[file]
        if top != top_ref:
            problems.append(
                f"{file}: top-1 {top} ({probs.get(top, float('nan')):.6f}), "
                f"reference {top_ref} ({ref[top_ref]:.6f})"
            )
        if set(probs) != set(ref):
            problems.append(f"{file}: classes differ: {sorted(set(ref) ^ set(probs))}")
        for label in sorted(set(ref) & set(probs)):
            dp = abs(probs[label] - ref[label])
            worst = max(worst, dp)
            if not dp <= tol:  # also catches NaN
                problems.append(
                    f"{file}: {label}: {probs[label]:.6f} vs reference {ref[label]:.6f} "
                    f"(|dp| {dp:.2e} > {tol:g})"
                )
    return worst, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("reference")
    parser.add_argument("others", nargs="+", metavar="NAME=REPORT")
    args = parser.parse_args()

    reference = read(args.reference)
    if not reference:
        unreadable(f"{args.reference}: no pictures were labelled")
    failed = False
    for spec in args.others:
        name, _, path = spec.rpartition("=")
        name = name or path
        worst, problems = compare(reference, read(path), args.tol)
        verdict = "FAIL" if problems else "ok"
        print(f"{verdict:4}  {name}: {len(reference)} pictures, max |dp| {worst:.2e} (tolerance {args.tol:g})")
        for p in problems:
            print(f"      {p}")
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
