"""Wall clock: videos per second of CPU inference, every method beside the full-frame baseline in the
same run (part of ``make demo``; see :func:`adafocus.benchmark.run_throughput` for the protocol).

    python benchmarks/throughput.py [--preset small] [--threads 2 1] [--batch-sizes 32 1] [--repeats 5]
                                    [--processes 2]

Writes benchmarks/results/throughput.csv (method, threads, batch_size, processes, gmacs, accuracy, videos_per_s,
spread, speedup_vs_full, hardware_efficiency, early_exit, rho). ``--processes N`` (default 2; 1 = skip) also
times the static methods at the largest batch size in N processes of one thread each, all at once.
"""

import argparse

from adafocus.benchmark import THROUGHPUT_METHODS, run_throughput

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--methods", nargs="+", default=list(THROUGHPUT_METHODS))
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 1])
    parser.add_argument("--repeats", type=int, default=5, help="timed samples of 32 test clips per method and setting")
    parser.add_argument("--no-early-exit", action="store_true")
    parser.add_argument("--processes", type=int, default=2,
                        help="also time the static methods in this many one-thread processes at once (1: skip)")
    args = parser.parse_args()
    run_throughput(args.preset, tuple(args.methods), batch_sizes=tuple(args.batch_sizes), threads=tuple(args.threads),
                   repeats=args.repeats, early_exit=not args.no_early_exit, processes=args.processes)
