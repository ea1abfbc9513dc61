"""Accuracy vs MACs of every method and budget (``make bench``; part of ``make demo``).

    python benchmarks/accuracy_vs_macs.py [--preset small] [--quick]

Writes benchmarks/results/accuracy_vs_macs.csv and figures/accuracy_vs_macs.{png,svg,html}.
"""

import argparse

from adafocus.benchmark import run_benchmark

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    run_benchmark(args.preset, quick=args.quick, workers=args.workers)
