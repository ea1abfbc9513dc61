"""Run the notebooks top to bottom and record how long each takes.

    python scripts/time_notebooks.py                 # FAST = True (the fast preset, what CI runs)
    python scripts/time_notebooks.py --full 04 09    # FAST = False (the small preset, after `make demo`)

The parameters cell is replaced by ``FAST = <mode>`` (as papermill would inject it) and the notebook
runs in a fresh kernel with nbclient; nothing is written back to ``notebooks/``. Times are appended
to ``benchmarks/results/notebook_times.csv`` (one row per notebook and mode, the latest kept).
Full mode reads the models `make demo` trained from ``$ADAFOCUS_CACHE``; a notebook whose
models are not cached trains them, which is what its time then includes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient
from tqdm.auto import tqdm

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "notebook_times.csv"


def run(path: Path, fast: bool, timeout_s: int) -> float:
    """Execute ``path`` with ``FAST = fast``; return the wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise SystemExit(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    cells[0].source = f"FAST = {fast}"
    t0 = time.time()
    NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.time() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="notebook number prefixes, e.g. 04 09 (default: all)")
    parser.add_argument("--full", action="store_true", help="FAST = False (the small preset)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    paths = [p for p in paths if not args.only or p.name[:2] in args.only]
    mode = "full" if args.full else "fast"
    rows = []
    for path in tqdm(paths, desc=f"notebooks ({mode})", unit="notebook"):
        seconds = run(path, fast=not args.full, timeout_s=args.timeout)
        rows.append({"notebook": path.stem, "mode": mode, "seconds": round(seconds, 1)})
        tqdm.write(f"{path.stem} ({mode}): {seconds:.0f} s")
    table = pd.DataFrame(rows)
    if RESULTS.exists():
        old = pd.read_csv(RESULTS)
        keep = ~(old["notebook"].isin(table["notebook"]) & (old["mode"] == mode))
        table = pd.concat([old[keep], table], ignore_index=True).sort_values(["mode", "notebook"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS, index=False)
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
