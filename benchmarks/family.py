"""The whole AdaFocus family from an empty cache in one command (``make family``; issue 15).

    python benchmarks/family.py [--workers 2] [--tsm-seeds 0] [--v1-seeds 0 1]

1. Trains every model the family's studies read, as jobs on ``--workers`` processes (one thread each;
   :func:`adafocus.jobs.run_jobs`, the longest chain first: the X3Ds' pretraining and then the whole-clip X3D):
   the data, the 2-D pretraining of each benchmark, the X3Ds' pretraining, Uni-AdaFocus-TSM and its shift-free
   twin at every ``--tsm-seeds``, Uni-AdaFocus-X3D and the whole-clip X3D, AdaFocus V1 at every ``--v1-seeds``
   (:func:`adafocus.family.family_jobs`), and beside them the side-by-side epoch timing of V1's stages against
   V2's and Uni-AdaFocus's (``family_v1.side_by_side_epoch_seconds``). Cached models are read back, not retrained.
2. Runs the three studies on those cached models: ``family_tsm.py``, ``family_x3d.py``, ``family_v1.py`` (their
   CSVs in ``benchmarks/results/``, the learning-curve figure).
3. Draws the family's accuracy-vs-MACs figure (``figures/family.*``; the demo's rows come from
   ``accuracy_vs_macs.csv``, written by ``make demo``).

The TSM-vs-shift-free table over three seeds (``benchmarks/results/family_tsm.csv`` as committed) is
``make family TSM_SEEDS="0 1 2"`` (about 6 minutes more on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import family_tsm
import family_v1
import family_x3d

from adafocus.family import FAMILY_PRESET, TSM_PRESET, family_jobs
from adafocus.jobs import Job, run_jobs

V1_TIMING_SECONDS = 90  # about how long the side-by-side epoch timing takes (orders the jobs only)


def run_family(workers: int = 2, tsm_seeds: tuple[int, ...] = (0,), v1_seeds: tuple[int, ...] = (0, 1)) -> None:
    t0 = time.time()
    jobs = family_jobs(tsm_seeds, v1_seeds)
    jobs.append(Job("V1 stages timed side by side", family_v1.side_by_side_epoch_seconds, (FAMILY_PRESET,),
                    V1_TIMING_SECONDS, ("data",)))
    done = run_jobs(jobs, workers, desc="make family: training")
    print(f"training done in {(time.time() - t0) / 60:.1f} min; the studies read the cached models")
    family_tsm.run_family_tsm(TSM_PRESET, workers, seeds=tsm_seeds)
    family_x3d.run_family_x3d(FAMILY_PRESET, workers)
    print(family_v1.run_family_v1(FAMILY_PRESET, v1_seeds, timing=done["V1 stages timed side by side"][0])
          .round(4).to_string(index=False))
    from adafocus.figures import FigureSet, fig_family

    for path in fig_family(FigureSet(FAMILY_PRESET)):
        print(f"wrote {path}")
    print(f"make family: {(time.time() - t0) / 60:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="processes training side by side (one thread each)")
    parser.add_argument("--tsm-seeds", type=int, nargs="+", default=[0], help="training seeds of the TSM pair")
    parser.add_argument("--v1-seeds", type=int, nargs="+", default=[0, 1], help="training seeds of AdaFocus V1")
    args = parser.parse_args()
    run_family(args.workers, tuple(args.tsm_seeds), tuple(args.v1_seeds))


if __name__ == "__main__":
    main()
