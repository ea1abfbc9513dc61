# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Accuracy against MACs
#
# The paper's main result is one plot: accuracy against the compute spent per video, one curve per
# method. On ActivityNet Uni-AdaFocus reaches 80.7% mAP at 27.2 GMACs per video; with early exit
# 80.4% at 18.1 and 78.3% at 9.1 GMACs; the best earlier method 76.9% at 21.7. At equal accuracy it
# needs about **4.8x fewer MACs** than its competitors, and on Something-Something (TSM backbone)
# 47.5% at 8.8 GMACs against TSM's 46.1% at 32.7 (all from Wang et al., TPAMI 2024).
#
# The workbench measures the same *shape* on the synthetic benchmark: every method (Uni-AdaFocus,
# AdaFocusV2, full-frame and low-resolution baselines, random and center patches, the oracle) at
# every budget, each trained from the same shared pretraining and counted with the same MAC counter.
# The full-frame baseline trains longer than the others, to its plateau (the cell below says how
# long), so that the comparison is against a converged baseline. `make bench` (or `make demo`)
# trains them at the small preset and writes `benchmarks/results/accuracy_vs_macs.csv`; this notebook
# reads it. With `FAST = True` it also builds a mini version from the fast preset's models.

# %% tags=["parameters"]
FAST = True  # True: the fast preset, a toy schedule (seconds; what CI runs). False: the small preset's models

# %%
# %matplotlib inline
from adafocus.notebook import notebook_setup

PRESET, cfg, splits = notebook_setup(FAST)  # data generated once, then cached under $ADAFOCUS_CACHE

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown

from adafocus.benchmark import summary
from adafocus.config import MODEL_TRAIN_OVERRIDES
from adafocus.viz.plots import accuracy_vs_macs

longer = {m: o["train.epochs"] for m, o in MODEL_TRAIN_OVERRIDES.items() if "train.epochs" in o}
Markdown(f"Every method trains {cfg.train.epochs} epochs at this preset, except "
         + ", ".join(f"`{m}` ({e} epochs)" for m, e in longer.items()) + ".")

# %% [markdown]
# ## The benchmark (small preset)
#
# One row per trained model (and per early-exit operating point): test accuracy, MACs per video,
# the policy metrics of notebook 04 where they apply, and the `supervision` each model had (`none`:
# label-free; `hinted`: the ablation that reads the true boxes; `oracle`: handed them).

# %%
from adafocus.notebook import results_table

results = results_table("accuracy_vs_macs.csv", ("curve", "supervision", "seed"))
if results is not None:
    accuracy_vs_macs(results[~results["early_exit"].astype(bool)], title="accuracy vs MACs, small preset")
    plt.show()
    display(results.groupby(["curve", "supervision"])["accuracy"].max().round(3).to_frame())
    print(summary(results))
elif not FAST:
    raise FileNotFoundError("benchmarks/results/accuracy_vs_macs.csv: run `make demo` first")

# %% [markdown]
# How to read it: the x axis is logarithmic, so equal horizontal distances are equal *ratios* of
# compute. A method is better when its curve is further up (more accurate) and to the left (cheaper).
# The full-frame baseline sets the reference; the oracle (true boxes at truly informative frames)
# is the ceiling of any patch policy at the same cost; random and center patches show what the same
# budget buys without a spatial policy.
#
# ## A mini benchmark you can run now
#
# With `FAST = True`: six models of the fast preset, each trained as the benchmark trains it
# (`training_config`: the full-frame baseline's longer budget included; cached, so a second run only
# evaluates), evaluated on the test split by `evaluate_model`, plus Uni-AdaFocus's early-exit curve
# (thresholds calibrated on the validation split, notebook 07). Toy models trained for seconds on
# tiny frames: the point here is the machinery, not the numbers (frames this small are cheap to
# process whole, so the patches save little or nothing: the cell prints what they cost).

# %%
from adafocus.evaluate import evaluate_model
from adafocus.notebook import training_config

METHODS = ["glance_only", "lowres_full_frame", "random_patch", "uni_adafocus", "oracle", "full_frame"]
if FAST:
    mini = pd.DataFrame([evaluate_model(m, training_config(m, cfg), splits, progress=False) for m in METHODS])
    display(mini[["method", "supervision", "accuracy", "mmacs", "params_m", "box_iou", "frame_recall"]].round(3))
    assert set(mini["supervision"]) == {"none", "oracle"}  # only the oracle reads the ground truth
    by = mini.set_index("method")["mmacs"]
    display(Markdown(f"Uni-AdaFocus costs {by['uni_adafocus'] / by['full_frame']:.2f}x the MACs of the full-frame "
                     f"baseline at the {cfg.name} preset ({by['uni_adafocus']:.2f} against {by['full_frame']:.2f} "
                     "MMACs)."))

# %%
from adafocus.analysis.early_exit import early_exit_curve, step_costs
from adafocus.evaluate import predict
from adafocus.notebook import train_model

if FAST:
    model = train_model("uni_adafocus", cfg, splits).model
    val, test = predict(model, splits["val"]), predict(model, splits["test"])
    curve = early_exit_curve(val.exit_logits, test.exit_logits, test.labels, step_costs(model, cfg))
    mini = pd.concat([mini, curve.assign(method="uni_adafocus+exit")], ignore_index=True)
    accuracy_vs_macs(mini, title=f"mini benchmark: {cfg.name} preset, test split")
    plt.show()

# %% [markdown]
# ## MACs are not seconds
#
# MACs count arithmetic; wall-clock time also pays for memory traffic, small kernels and Python.
# `make demo` times batched CPU inference of each method next to the full-frame baseline in the
# same process (`benchmarks/results/throughput.csv`, every setting in `figures/throughput.png`). The
# paper measured 569 against 218 videos per second on a GPU for Uni-AdaFocus-TSM against TSM (about
# 2.6x; Wang et al., TPAMI 2024). The cell shows the static models in one setting: batches of 32 clips,
# one process of two threads. `hardware_efficiency` is the speedup divided by the MACs ratio: it would be
# one if the seconds fell as the MACs do.

# %%
speed = results_table("throughput.csv", ("method", "videos_per_s", "threads", "batch_size", "processes"))
if speed is not None:
    one = speed.query("threads == 2 and batch_size == 32 and processes == 1 and not early_exit")
    one = one.sort_values("videos_per_s")
    ax = one.plot.barh(x="method", y="videos_per_s", legend=False, figsize=(6, 3))
    ax.set(xlabel="videos per second (batch 32, 2 threads)", ylabel="", title="measured throughput")
    plt.show()
    display(one[["method", "gmacs", "accuracy", "videos_per_s", "speedup_vs_full", "hardware_efficiency"]].round(3))

# %% [markdown]
# ## Which budget?
#
# The patch size `P` and the number of focus frames `K` are the knobs a user of the method turns
# first. `python benchmarks/budget_grid.py` trains label-free Uni-AdaFocus at every `P` in
# {16, 24, 32} and `K` in {2, 4, 8} (`benchmarks/results/budget_grid.csv`, `figures/budget_grid.png`);
# with `FAST = True` the cell trains a 2 x 2 grid of the fast preset instead. Left: accuracy over the
# grid; right: accuracy against MMACs, with the Pareto front (the budgets that no other budget beats
# on both counts). The cell then answers the practitioner's question for one MACs budget (the
# median of the grid's costs): the most accurate `(P, K)` that fits.

# %%
from adafocus.analysis.budgets import best_budget, pareto_front, train_budget_grid
from adafocus.viz.plots import budget_grid

grid = (train_budget_grid(cfg, [(12, 2), (16, 2), (12, 3), (16, 3)], splits) if FAST
        else results_table("budget_grid.csv", ("patch_size", "num_focus", "mmacs", "accuracy")))
if grid is not None:
    budget_grid(grid, title=f"Which budget? ({PRESET} preset, test split, label-free)")
    plt.show()
    limit = grid["mmacs"].median()
    pick = best_budget(grid, limit)
    display(Markdown(f"At most {limit:.2f} MMACs per video: **P = {pick['patch_size']:.0f}, K = "
                     f"{pick['num_focus']:.0f}** ({100 * pick['accuracy']:.1f}% at {pick['mmacs']:.2f} MMACs); "
                     f"{len(pareto_front(grid))} of the {len(grid)} budgets are on the Pareto front."))
    assert pick["mmacs"] <= limit and pick["accuracy"] == grid[grid["mmacs"] <= limit]["accuracy"].max()

# %% [markdown]
# ## Exercises
#
# The exercises use `df`: the benchmark's CSV in full mode, the mini benchmark with `FAST = True`.
#
# **Exercise 1: how many times fewer MACs?** For every method's most accurate row, the ratio of the
# full-frame baseline's MACs to its own, and its accuracy difference to the full-frame baseline.

# %% jupyter={"source_hidden": true}
# Solution
df = mini if FAST else results
full = df[df["method"] == "full_frame"].iloc[0]
best = df.loc[df.groupby("method")["accuracy"].idxmax()].copy()
best["MACs saving (x)"] = full["mmacs"] / best["mmacs"]
best["accuracy vs full frame (points)"] = 100 * (best["accuracy"] - full["accuracy"])
display(best[["method", "mmacs", "accuracy", "MACs saving (x)", "accuracy vs full frame (points)"]].round(2))
saving = best.set_index("method")["MACs saving (x)"]
assert abs(saving["full_frame"] - 1) < 1e-9 and saving["glance_only"] > 1  # the glance alone is always cheaper

# %% [markdown]
# **Exercise 2: the Pareto front.** Which rows are not beaten by another row that is both cheaper
# and at least as accurate? Draw them as a step line over the plot.

# %% jupyter={"source_hidden": true}
# Solution
ordered = df.sort_values(["mmacs", "accuracy"], ascending=[True, False])
front = ordered[ordered["accuracy"] > ordered["accuracy"].cummax().shift(fill_value=-1)]
ax = accuracy_vs_macs(df, title="accuracy vs MACs with the Pareto front").axes[0]
ax.step(front["mmacs"], 100 * front["accuracy"], where="post", color="k", linestyle="--", marker="o",
        markerfacecolor="none", markersize=12, label="Pareto front")
ax.legend(fontsize=7, loc="lower right")
plt.show()
display(front[["method", "mmacs", "accuracy"]].round(3))
assert front["mmacs"].is_monotonic_increasing and front["accuracy"].is_monotonic_increasing  # cheaper = less accurate

# %% [markdown]
# **Exercise 3: explore interactively.** `accuracy_vs_macs_plotly` draws the same plot with plotly:
# hover over a point to see its method, budget and numbers.

# %% jupyter={"source_hidden": true}
# Solution
from adafocus.viz.plots import accuracy_vs_macs_plotly

fig = accuracy_vs_macs_plotly(df, title="accuracy vs MACs (hover for details)")
assert len(fig.data) >= df["method"].nunique()  # at least one trace per method
fig
