"""The benchmark end to end on the tiny preset: every method and budget, CSV, figures, throughput."""

import pandas as pd
import pytest
import torch

from adafocus.benchmark import EXIT_METHODS, benchmark_runs, run_benchmark, run_throughput
from adafocus.evaluate import evaluate_model
from adafocus.analysis.early_exit import EXIT_RHOS
from adafocus.figures import FigureSet, fig_throughput, make_figures
from adafocus.config import get_config


@pytest.mark.slow
def test_tiny_benchmark_writes_csv_and_figures(session_cache, tmp_path):
    torch.set_num_threads(1)
    results, figs = tmp_path / "results", tmp_path / "figures"
    df = run_benchmark("tiny", quick=True, workers=1, results_dir=results)
    csv = pd.read_csv(results / "accuracy_vs_macs.csv")
    assert {"method", "curve", "budget", "recipe", "supervision", "seed", "gmacs", "accuracy"} <= set(csv.columns)
    static = csv[~csv["early_exit"]]
    assert len(static) == len(benchmark_runs(quick=True))
    assert set(static["method"]) == {r.method for r in benchmark_runs(quick=True)}
    # what each model was trained with: only the oracle saw ground truth in the quick set (no hinted run)
    assert set(static.loc[static["method"] == "oracle", "supervision"]) == {"oracle"}
    assert set(static.loc[static["method"] != "oracle", "supervision"]) == {"none"}
    exits = csv[csv["early_exit"]]
    # (on tiny after one epoch no early exit may beat chance on validation, and only usable exits take clips:
    # then every budget costs the static model's MACs; tests/test_early_exit.py checks that exits save)
    assert len(exits) >= 3 and exits["gmacs"].min() <= static.loc[static["method"] == "uni_adafocus", "gmacs"].min()
    # patches cost less than full frames, glance-only least of all
    cost = static.set_index("method")["gmacs"]
    assert cost["glance_only"] < cost["uni_adafocus"] < cost["full_frame"]
    assert ((csv["accuracy"] >= 0) & (csv["accuracy"] <= 1)).all()
    quality = pd.read_csv(results / "policy_quality.csv")
    assert {"box_iou", "random_box_iou", "frame_recall", "uniform_frame_recall", "surrogate_acc_true_boxes",
            "surrogate_acc_random_boxes"} <= set(quality.columns)
    assert "full_frame" not in set(quality["method"]) and "uni_adafocus" in set(quality["method"])
    assert (results / "learning_to_look.pt").stat().st_size > 0
    paths = make_figures("tiny", results_dir=results, fig_dir=figs)
    for name in ("accuracy_vs_macs.png", "accuracy_vs_macs.svg", "accuracy_vs_macs.html", "learning_curves.png",
                 "learning_to_look.png", "learning_to_look.gif", "policy_filmstrip.png"):
        assert (figs / name).stat().st_size > 1000 and figs / name in paths
    assert len(df) == len(csv)

    tp = run_throughput("tiny", methods=("full_frame", "uni_adafocus"), repeats=2, threads=1, batch_sizes=(32, 1),
                        results_dir=results, processes=2)
    assert list(tp.columns) == ["method", "threads", "batch_size", "processes", "gmacs", "accuracy", "videos_per_s",
                                "spread", "speedup_vs_full", "hardware_efficiency", "early_exit", "rho"]
    assert len(pd.read_csv(results / "throughput.csv")) == len(tp)
    # two one-thread processes at once: the static methods at the largest batch, against the full frame timed so
    parallel, single = tp[tp["processes"] == 2], tp[tp["processes"] == 1]
    assert sorted(parallel["method"]) == ["full_frame", "uni_adafocus"] and set(parallel["batch_size"]) == {32}
    assert not parallel["early_exit"].any() and (parallel["threads"] == 1).all()
    assert parallel.set_index("method")["accuracy"].equals(
        single[(single["batch_size"] == 32) & ~single["early_exit"]].set_index("method")["accuracy"])
    uni = parallel.set_index("method").loc["uni_adafocus"]
    full = parallel.set_index("method").loc["full_frame"]
    assert uni["speedup_vs_full"] == pytest.approx(uni["videos_per_s"] / full["videos_per_s"])
    tp = single
    # every setting has its own baseline row; early exit is timed at every calibrated budget, in the same run
    for (threads, bs), rows in tp.groupby(["threads", "batch_size"]):
        full = rows[rows["method"] == "full_frame"]
        assert len(full) == 1 and full["speedup_vs_full"].item() == 1.0 and full["hardware_efficiency"].item() == 1.0
        exits = rows[rows["early_exit"]]
        assert set(exits["method"]) == set(EXIT_METHODS.values())
        for _, mode in exits.groupby("method"):
            assert sorted(mode["rho"]) == sorted(EXIT_RHOS)
        # the whole glance first: the same budgets, the same accuracies, never fewer MACs
        step, whole = (exits[exits["method"] == EXIT_METHODS[g]].set_index("rho") for g in ("stepwise", "whole"))
        assert (whole["accuracy"] == step["accuracy"]).all() and (whole["gmacs"] >= step["gmacs"] - 1e-12).all()
        macs_ratio = full["gmacs"].item() / rows["gmacs"]
        assert ((rows["hardware_efficiency"] - rows["speedup_vs_full"] / macs_ratio).abs() < 1e-9).all()
    assert set(tp["batch_size"]) == {32, 1} and set(tp["threads"]) == {1}
    assert (tp["videos_per_s"] > 0).all() and (tp["spread"] >= 0).all()
    static = tp[~tp["early_exit"]]
    assert static["rho"].isna().all() and ((tp["accuracy"] >= 0) & (tp["accuracy"] <= 1)).all()
    assert (figs / "throughput.png") in fig_throughput(FigureSet("tiny", results, figs))


def test_evaluate_model_reports_policy_metrics_beside_references(session_cache):
    torch.set_num_threads(1)
    cfg = get_config("tiny", **{"pretrain.epochs": 0, "train.epochs": 1,
                                "data.num_train": 32, "data.num_val": 16, "data.num_test": 16})
    row = evaluate_model("uni_adafocus", cfg, progress=False)
    for key in ("accuracy", "gmacs", "box_iou", "random_box_iou", "frame_recall", "uniform_frame_recall",
                "surrogate_acc_true_boxes", "surrogate_acc_random_boxes"):
        assert key in row and row[key] == row[key]  # present and not NaN
    assert 0 <= row["box_iou"] <= 1 and 0 <= row["frame_recall"] <= 1
    assert row["supervision"] == "none" and row["recipe"] == "cpu"


def test_time_in_processes_names_a_failing_worker_and_checks_its_arguments():
    from adafocus.benchmark import time_in_processes

    with pytest.raises(RuntimeError, match="a worker failed: ValueError: throughput: unknown method 'nope'"):
        time_in_processes("tiny", ("nope",), batch_size=32, repeats=1, processes=2)
    with pytest.raises(ValueError, match="batch size dividing 32"):
        time_in_processes("tiny", ("full_frame",), batch_size=5, repeats=1)
    with pytest.raises(ValueError, match="processes >= 1"):
        time_in_processes("tiny", ("full_frame",), batch_size=32, repeats=1, processes=0)
