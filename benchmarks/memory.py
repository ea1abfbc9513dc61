"""Peak memory of the workbench's long-running jobs, measured from outside the process tree.

Every 0.1 s the script sums, over the command and all its children, the resident memory of each
process from ``/proc/<pid>/status`` (Linux): ``RssAnon`` (memory the processes hold themselves:
tensors, models, Python objects) and ``RssFile`` (pages of files mapped into them, e.g. the
memory-mapped data cache: the kernel may drop these at any time and shares them between
processes). It reports the peak of each and of their sum, and appends to
``benchmarks/results/memory.csv``. Summed over several processes, a page that they share (the data
cache mapped by every worker) counts once per process: the file column over-states what the
machine holds, the own column does not.

    python benchmarks/memory.py                      # the default jobs below, small preset
    python benchmarks/memory.py --label demo -- make demo    # any command

Default jobs: ``data_epoch`` streams one epoch of the cached small training split in batches (what
training reads); ``train_epoch`` trains Uni-AdaFocus for one epoch; ``demo_cached`` is
``python -m adafocus demo`` with every model already trained.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "memory.csv"
INTERVAL_S = 0.1

DATA_EPOCH = """
from adafocus.config import get_config
from adafocus.data.synthetic import load_split
from adafocus.data.batches import iterate_batches
cfg = get_config("small")
ds = load_split(cfg.data, "train")
n = sum(len(b["label"]) for b in iterate_batches(ds, cfg.train.batch_size, shuffle=True))
print(f"streamed {n} clips, {ds.clips.videos.numel() / 2**20:.0f} MiB of uint8 video")
"""

JOBS = {
    "data_epoch": [sys.executable, "-c", DATA_EPOCH],
    "train_epoch": [sys.executable, "-m", "adafocus", "train", "--model", "uni_adafocus", "--preset", "small",
                    "--set", "train.epochs=1", "--retrain"],
    "demo_cached": [sys.executable, "-m", "adafocus", "demo", "--preset", "small"],
}


def _status_kib(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(p) for p in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []
    return kids + [g for k in kids for g in _children(k)]


def measure(command: list[str], label: str) -> dict:
    """Run ``command`` and sample its process tree's memory until it exits."""
    if not Path("/proc/self/status").exists():
        raise SystemExit("benchmarks/memory.py reads /proc: it runs on Linux only")
    t0 = time.time()
    proc = subprocess.Popen(command)
    peak = {"anon": 0, "file": 0, "total": 0, "processes": 1}
    while proc.poll() is None:
        pids = [proc.pid] + _children(proc.pid)
        stats = [_status_kib(p) for p in pids]
        anon = sum(s.get("RssAnon", 0) + s.get("RssShmem", 0) for s in stats)
        file = sum(s.get("RssFile", 0) for s in stats)
        peak = {"anon": max(peak["anon"], anon), "file": max(peak["file"], file),
                "total": max(peak["total"], anon + file), "processes": max(peak["processes"], len(pids))}
        time.sleep(INTERVAL_S)
    if proc.returncode != 0:
        raise SystemExit(f"{label}: {' '.join(command)} exited with {proc.returncode}")
    mib = {k: round(v / 1024) for k, v in peak.items() if k != "processes"}
    return {"job": label, "peak_anon_mib": mib["anon"], "peak_file_mib": mib["file"],
            "peak_total_mib": mib["total"], "max_processes": peak["processes"],
            "seconds": round(time.time() - t0, 1), "command": " ".join(command)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", nargs="*", default=list(JOBS), choices=list(JOBS))
    parser.add_argument("--label", help="label of a custom command given after --")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND to measure instead of the jobs")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    todo = {args.label or "custom": command} if command else {name: JOBS[name] for name in args.jobs}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    for label, cmd in todo.items():
        rows.append(measure(cmd, label))
        print(f"{label}: peak {rows[-1]['peak_total_mib']} MiB resident "
              f"({rows[-1]['peak_anon_mib']} MiB own + {rows[-1]['peak_file_mib']} MiB mapped files), "
              f"{rows[-1]['seconds']} s", flush=True)
    table = pd.DataFrame(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if RESULTS.exists():
        old = pd.read_csv(RESULTS)
        table = pd.concat([old[~old["job"].isin(table["job"])], table], ignore_index=True)
    table.to_csv(RESULTS, index=False)
    print(table.drop(columns="command").to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
