"""``make demo``: data, preview, paper cost table, the benchmark, throughput and every figure.

Each stage is cached (data by its config hash, models by theirs), so a second run only
re-evaluates and redraws: minutes instead of the first run's training.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from adafocus.benchmark import RESULTS_DIR, run_benchmark, run_throughput
from adafocus.config import get_config

PAPER_PATCHES = (96, 128, 160, 192)


def paper_cost_table(results_dir: Path = RESULTS_DIR) -> pd.DataFrame:
    """MACs per component at the paper's sizes (docs/design.md, "Costs"), next to the published figures."""
    from adafocus.flops import model_cost

    published = {96: 0.7507, 128: 1.3346, 160: 2.0853, 192: 3.0028}
    rows = []
    for p in PAPER_PATCHES:
        cost = model_cost("uni_adafocus", get_config("full", **{"model.patch_size": p}))
        c = cost["components"]
        rows.append({"patch_size": p, "glance_per_frame_gmacs": c["glance"] / cost["glance_frames"],
                     "focus_per_patch_gmacs": c["focus_per_patch"], "published_focus_per_patch": published[p],
                     "spatial_policy_gmacs": c["spatial_policy"], "temporal_policy_gmacs": c["temporal_policy"],
                     "classifier_gmacs": c["classifier"], "total_gmacs": cost["total_gmacs"]})
    df = pd.DataFrame(rows)
    results_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(results_dir / "paper_costs.csv", index=False)
    return df


def run_demo(preset: str = "small") -> None:
    t0 = time.time()
    from adafocus.data.preview import preview
    from adafocus.data.synthetic import load_splits

    cfg = get_config(preset)
    print(f"[1/5] synthetic benchmark ({preset} preset)")
    splits = load_splits(cfg.data)
    print("      " + ", ".join(f"{k}: {len(v)} clips" for k, v in splits.items()))
    print("[2/5] preview:", json.dumps({k: str(v) for k, v in preview(cfg.data, Path("figures/data_preview")).items()}))
    print("[3/5] costs at the paper's sizes (GMACs)")
    print(paper_cost_table().to_string(index=False))
    print("[4/5] accuracy vs MACs: every method and budget")
    run_benchmark(preset)
    print("[5/5] throughput (videos/s, batched CPU inference)")
    run_throughput(preset)
    from adafocus.figures import make_figures

    make_figures(preset)
    print(f"demo done in {(time.time() - t0) / 60:.1f} min: see figures/ and benchmarks/results/")
