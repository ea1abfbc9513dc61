"""Wall clock: videos per second of batched CPU inference, every method beside the full-frame
baseline in the same run (part of ``make demo``).

    python benchmarks/throughput.py [--preset small] [--threads 2] [--repeats 5]

Writes benchmarks/results/throughput.csv (method, gmacs, accuracy, videos_per_s, speedup_vs_full).
"""

import argparse

from adafocus.benchmark import run_throughput

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    run_throughput(args.preset, batch_size=args.batch_size, repeats=args.repeats, threads=args.threads)
