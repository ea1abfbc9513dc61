"""Builds notebooks/06_accuracy_vs_macs.ipynb: the benchmark, every method and budget on one plot."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _nb import code, md, parameters, presets, write  # noqa: E402

NAME = "06_accuracy_vs_macs"

CELLS = [
    md("""
    # 06 · Accuracy against MACs

    The paper's main result is one plot: accuracy against the compute spent per video, one curve per
    method. On ActivityNet Uni-AdaFocus reaches 80.7% mAP at 27.2 GMACs per video; with early exit
    80.4% at 18.1 and 78.3% at 9.1 GMACs; the best earlier method 76.9% at 21.7. At equal accuracy it
    needs about **4.8x fewer MACs** than its competitors, and on Something-Something (TSM backbone)
    47.5% at 8.8 GMACs against TSM's 46.1% at 32.7.

    The workbench measures the same *shape* on the synthetic benchmark: every method (Uni-AdaFocus,
    AdaFocusV2, full-frame and low-resolution baselines, random and centre patches, the oracle) at
    every budget, each trained from the same shared pretraining for the same number of epochs, and
    each counted with the same MAC counter. `make bench` (or `make demo`) trains them at the small
    preset and writes `benchmarks/results/accuracy_vs_macs.csv`; this notebook reads it. With
    `FAST = True` it also builds a mini version from tiny models in about a minute.
    """),
    parameters(),
    presets(),
    code("""
    from pathlib import Path

    import matplotlib.pyplot as plt
    import pandas as pd
    import torch

    from adafocus.benchmark import summary
    from adafocus.config import get_config
    from adafocus.viz.plots import accuracy_vs_macs

    torch.set_num_threads(1)
    cfg = get_config(PRESET, **OVERRIDES)
    RESULTS = Path("..") / "benchmarks" / "results"  # notebooks run from notebooks/
    """),
    md("""
    ## The benchmark (small preset)

    One row per trained model (and per early-exit operating point): test accuracy, MACs per video,
    and the policy metrics of notebook 04 where they apply.
    """),
    code("""
    csv = RESULTS / "accuracy_vs_macs.csv"
    if csv.exists():
        results = pd.read_csv(csv)
        accuracy_vs_macs(results, title="accuracy vs MACs, small preset (benchmarks/results)")
        plt.show()
        print(summary(results))
    elif FAST:
        results = None
        print(f"{csv} not found: run `make bench` from the repository root to create it (minutes)")
    else:
        raise FileNotFoundError(f"{csv}: run `make bench` (or `make demo`) from the repository root first")
    """),
    md("""
    How to read it: the x axis is logarithmic, so equal horizontal distances are equal *ratios* of
    compute. A method is better when its curve is further up (more accurate) and to the left (cheaper).
    The full-frame baseline sets the reference; the oracle (true boxes at truly informative frames)
    is the ceiling of any patch policy at the same cost; random and centre patches show what the same
    budget buys without a spatial policy.

    ## A mini benchmark you can run now

    With `FAST = True`: five tiny models, each trained on the toy schedule (cached, so a second run
    only evaluates), evaluated on the test split by `evaluate_model`, plus Uni-AdaFocus's early-exit
    curve (thresholds calibrated on the validation split, notebook 07). Toy models trained for
    seconds are close to chance: the point here is the machinery, not the numbers.
    """),
    code("""
    from adafocus.data.synthetic import load_splits
    from adafocus.evaluate import evaluate_model

    METHODS = ["glance_only", "lowres_full_frame", "random_patch", "uni_adafocus", "full_frame"]
    if FAST:
        splits = load_splits(cfg.data)
        mini = pd.DataFrame([evaluate_model(method, cfg, splits, progress=False) for method in METHODS])
        display(mini[["method", "accuracy", "mmacs", "params_m", "box_iou", "frame_recall"]].round(3))
    """),
    code("""
    from adafocus.early_exit import early_exit_curve, step_costs
    from adafocus.evaluate import predict
    from adafocus.train import train

    if FAST:
        model = train("uni_adafocus", cfg, splits, progress=False).model
        val, test = predict(model, splits["val"]), predict(model, splits["test"])
        curve = early_exit_curve(val.exit_logits, test.exit_logits, test.labels, step_costs(model, cfg))
        mini = pd.concat([mini, curve.assign(method="uni_adafocus+exit")], ignore_index=True)
        accuracy_vs_macs(mini, title="mini benchmark: tiny preset, toy schedule, test split")
        plt.show()
    """),
    md("""
    ## MACs are not seconds

    MACs count arithmetic; wall-clock time also pays for memory traffic, small kernels and Python.
    `make demo` times batched CPU inference of each method next to the full-frame baseline in the
    same process (`benchmarks/results/throughput.csv`). The paper measured 569 against 218 videos per
    second on a GPU for Uni-AdaFocus-TSM against TSM (about 2.6x).
    """),
    code("""
    throughput = RESULTS / "throughput.csv"
    if throughput.exists():
        speed = pd.read_csv(throughput).sort_values("videos_per_s")
        ax = speed.plot.barh(x="method", y="videos_per_s", legend=False, figsize=(6, 3))
        ax.set(xlabel="videos per second (batched CPU inference)", ylabel="", title="measured throughput")
        plt.show()
        display(speed.round(3))
    else:
        print(f"{throughput} not found: `make demo` measures it")
    """),
    md("""
    ## Exercises

    The exercises use `df`: the benchmark's CSV in full mode, the mini benchmark with `FAST = True`.

    **Exercise 1: how many times fewer MACs?** For every method's most accurate row, the ratio of the
    full-frame baseline's MACs to its own, and its accuracy difference to the full-frame baseline.
    """),
    code("""
    # Solution
    df = mini if FAST else results
    full = df[df["method"] == "full_frame"].iloc[0]
    best = df.loc[df.groupby("method")["accuracy"].idxmax()].copy()
    best["MACs saving (x)"] = full["mmacs"] / best["mmacs"]
    best["accuracy vs full frame (points)"] = 100 * (best["accuracy"] - full["accuracy"])
    best[["method", "mmacs", "accuracy", "MACs saving (x)", "accuracy vs full frame (points)"]].round(2)
    """),
    md("""
    **Exercise 2: the Pareto front.** Which rows are not beaten by another row that is both cheaper
    and at least as accurate? Draw them as a step line over the plot.
    """),
    code("""
    # Solution
    ordered = df.sort_values(["mmacs", "accuracy"], ascending=[True, False])
    front = ordered[ordered["accuracy"] > ordered["accuracy"].cummax().shift(fill_value=-1)]
    ax = accuracy_vs_macs(df, title="accuracy vs MACs with the Pareto front").axes[0]
    ax.step(front["mmacs"], 100 * front["accuracy"], where="post", color="k", linestyle="--", marker="o",
            markerfacecolor="none", markersize=12, label="Pareto front")
    ax.legend(fontsize=7, loc="lower right")
    plt.show()
    front[["method", "mmacs", "accuracy"]].round(3)
    """),
    md("""
    **Exercise 3: explore interactively.** `accuracy_vs_macs_plotly` draws the same plot with plotly:
    hover over a point to see its method, budget and numbers.
    """),
    code("""
    # Solution
    from adafocus.viz.plots import accuracy_vs_macs_plotly

    accuracy_vs_macs_plotly(df, title="accuracy vs MACs (hover for details)")
    """),
]

if __name__ == "__main__":
    print(write(NAME, CELLS))
