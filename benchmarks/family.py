"""The whole AdaFocus family from an empty cache in one command (``make family``; issue 15).

    python benchmarks/family.py [--workers 2] [--tsm-seeds 0] [--v1-seeds 0 1]

1. Trains and evaluates every model of the family's three studies as jobs on ``--workers`` processes (one
   thread each; :func:`adafocus.jobs.run_jobs`, the longest chain first: the X3Ds' pretraining, then the
   whole-clip X3D): the data, the 2-D pretraining of each benchmark, the X3Ds' pretraining, then each model,
   trained (or read back from the cache) and scored on the test split by its study's own function
   (:func:`adafocus.family.family_jobs`): Uni-AdaFocus-TSM and its shift-free twin at every ``--tsm-seeds``
   (``family_tsm.evaluate_one``), Uni-AdaFocus-X3D and the whole-clip X3D (``family_x3d.evaluate_one``),
   AdaFocus V1 at every ``--v1-seeds`` (``family_v1.v1_run``); beside them the side-by-side epoch timing of V1's
   stages against V2's and Uni-AdaFocus's (``family_v1.side_by_side_epoch_seconds``).
2. Writes the three studies' tables (``benchmarks/results/family_tsm.csv``, ``family_x3d.csv``,
   ``family_v1*.csv``) and the learning-curve figure, as each study's script would.
3. Draws the family's accuracy-vs-MACs figure (``figures/family.*``; the demo's rows come from
   ``accuracy_vs_macs.csv``, written by ``make demo``).

The committed ``family_tsm.csv`` is ``make family TSM_SEEDS="0 1 2"`` (the TSM pair at three training seeds,
about 6 minutes more on 2 cores).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import family_tsm
import family_v1
import family_x3d

from adafocus.family import FAMILY_PRESET, TSM_METHODS, TSM_PRESET, X3D_METHODS, family_jobs
from adafocus.jobs import Job, run_jobs

V1_TIMING = "V1 stages timed side by side"
V1_TIMING_SECONDS = 90  # about how long the side-by-side epoch timing takes (orders the jobs only)


def evaluate_member(method: str, preset: str, seed: int) -> Any:
    """Train (or load) one family member and score it as its study does: a row of its table (V1: its curve and
    final row)."""
    if method in TSM_METHODS:
        return family_tsm.evaluate_one((preset, method, seed))
    if method in X3D_METHODS:
        return family_x3d.evaluate_one((preset, method))
    return family_v1.v1_run(preset, seed)


def run_family(workers: int = 2, tsm_seeds: tuple[int, ...] = (0,), v1_seeds: tuple[int, ...] = (0, 1)) -> None:
    t0 = time.time()
    jobs = family_jobs(tsm_seeds, v1_seeds, member=evaluate_member)
    jobs.append(Job(V1_TIMING, family_v1.side_by_side_epoch_seconds, (FAMILY_PRESET,), V1_TIMING_SECONDS,
                    ("data",)))
    done = run_jobs(jobs, workers, desc="make family")
    out = {name: value for name, (value, _) in done.items()}
    print(f"every model trained and scored in {(time.time() - t0) / 60:.1f} min")
    family_tsm.tsm_table([out[f"{m} seed {s}"] for s in tsm_seeds for m in TSM_METHODS])
    family_x3d.x3d_table([out[m] for m in X3D_METHODS])
    final = family_v1.run_family_v1(FAMILY_PRESET, v1_seeds, runs=[out[f"adafocus_v1 seed {s}"] for s in v1_seeds],
                                    timing=out[V1_TIMING])
    print(final.round(4).to_string(index=False))
    from adafocus.figures import FigureSet, fig_family

    for path in fig_family(FigureSet(FAMILY_PRESET)):
        print(f"wrote {path}")
    print(f"make family: {(time.time() - t0) / 60:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="processes working side by side (one thread each)")
    parser.add_argument("--tsm-seeds", type=int, nargs="+", default=[0], help="training seeds of the TSM pair")
    parser.add_argument("--v1-seeds", type=int, nargs="+", default=[0, 1], help="training seeds of AdaFocus V1")
    args = parser.parse_args()
    run_family(args.workers, tuple(args.tsm_seeds), tuple(args.v1_seeds))


if __name__ == "__main__":
    main()
