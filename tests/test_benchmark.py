"""The benchmark end to end on the tiny preset: every method and budget, CSV, figures, throughput."""

import pandas as pd
import pytest
import torch

from adafocus.benchmark import benchmark_runs, run_benchmark, run_throughput
from adafocus.evaluate import evaluate_model
from adafocus.config import get_config


@pytest.mark.slow
def test_tiny_benchmark_writes_csv_and_figures(session_cache, tmp_path):
    torch.set_num_threads(1)
    results, figs = tmp_path / "results", tmp_path / "figures"
    df = run_benchmark("tiny", quick=True, workers=1, results_dir=results, fig_dir=figs)
    csv = pd.read_csv(results / "accuracy_vs_macs.csv")
    assert {"method", "budget", "gmacs", "accuracy"} <= set(csv.columns)
    static = csv[~csv["early_exit"]]
    assert len(static) == len(benchmark_runs(quick=True))
    assert set(static["method"]) == {r.method for r in benchmark_runs(quick=True)}
    exits = csv[csv["early_exit"]]
    assert len(exits) >= 3 and exits["gmacs"].min() < static.loc[static["method"] == "uni_adafocus", "gmacs"].min()
    # patches cost less than full frames, glance-only least of all
    cost = static.set_index("method")["gmacs"]
    assert cost["glance_only"] < cost["uni_adafocus"] < cost["full_frame"]
    assert ((csv["accuracy"] >= 0) & (csv["accuracy"] <= 1)).all()
    for name in ("accuracy_vs_macs.png", "accuracy_vs_macs.svg", "accuracy_vs_macs.html", "learning_curves.png"):
        assert (figs / name).stat().st_size > 1000
    assert len(df) == len(csv)

    tp = run_throughput("tiny", methods=("full_frame", "uni_adafocus"), repeats=2, threads=1, results_dir=results)
    assert set(tp.columns) >= {"method", "gmacs", "accuracy", "videos_per_s", "speedup_vs_full"}
    assert tp.loc[tp["method"] == "full_frame", "speedup_vs_full"].item() == 1.0
    assert (tp["videos_per_s"] > 0).all()


def test_evaluate_model_reports_policy_metrics_beside_references(session_cache):
    torch.set_num_threads(1)
    cfg = get_config("tiny", **{"train.pretrain_epochs": 0, "train.phase2_epochs": 1,
                                "data.num_train": 32, "data.num_val": 16, "data.num_test": 16})
    row = evaluate_model("uni_adafocus", cfg, progress=False)
    for key in ("accuracy", "gmacs", "box_iou", "random_box_iou", "frame_recall", "uniform_frame_recall"):
        assert key in row and row[key] == row[key]  # present and not NaN
    assert 0 <= row["box_iou"] <= 1 and 0 <= row["frame_recall"] <= 1
