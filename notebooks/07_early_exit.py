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
# # 07 · Early exit: easy videos leave early
#
# The third redundancy is **sample-wise**: some videos are easy and could be answered after a quick
# look. Uni-AdaFocus's classifier predicts after *every* step, first after each glance frame, then
# after each focus patch, so a video can stop at the first step where the model is confident
# enough; it then never pays for the remaining patches. On ActivityNet this keeps 80.4% mAP at
# 18.1 GMACs per video (80.7% at 27.2 without exits) and 78.3% at 9.1 GMACs (Wang et al., TPAMI 2024).
#
# Three ingredients: the first two are pure functions of the exit logits in
# `adafocus.analysis.early_exit`, the third runs the model step by step (`adafocus.models.exits`):
#
# 1. **confidence** = the maximum softmax probability at an exit (not the raw logits);
# 2. **calibration**: choose the share of videos `q_k ∝ ρ^k` that should leave at each exit `k`;
#    on the **validation** split (never the training or the test split) set each exit's threshold
#    greedily so that this share does; the expected cost is `Σ_k q_k · cost(k)`;
# 3. **real exits**: at inference, a video that left is not computed any further. The cost
#    counter checks that the exits cost what the calibration expected.

# %% tags=["parameters"]
FAST = True  # True: the fast preset, a toy schedule (seconds; what CI runs). False: the small preset's models

# %%
# %matplotlib inline
from adafocus.notebook import notebook_setup

PRESET, cfg, splits = notebook_setup(FAST)  # data generated once, then cached under $ADAFOCUS_CACHE

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from IPython.display import Markdown

from adafocus.notebook import train_model

model = train_model("uni_adafocus", cfg, splits).model  # label-free; cached after the first run

# %% [markdown]
# ## What each exit costs
#
# `step_costs` measures, with the MAC counter, one video that leaves at each exit: each glance step
# adds one glance frame; the first focus step also runs both policies and crops a patch; each
# further focus step adds one patch through the focus network.

# %%
from adafocus.analysis.early_exit import step_costs
from adafocus.viz import colors

costs = step_costs(model, cfg)  # (S,) MACs of a video that leaves at exit k (cumulative)
S, Tg = len(costs), model.classifier.glance_frames
fig, ax = plt.subplots(figsize=(7, 3))
glance, focus = colors.GLANCE_RGB, colors.FOCUS_RGB  # the workbench's palette (adafocus.viz.colors)
ax.bar(range(1, S + 1), costs / 1e6, color=[colors.hex_color(glance)] * Tg + [colors.hex_color(focus)] * (S - Tg))
ax.set(xlabel=f"exit (1..{Tg}: glance steps, {colors.color_name(glance)}; "
              f"{Tg + 1}..{S}: focus steps, {colors.color_name(focus)})",
       ylabel="MMACs spent when leaving here", title="cost of leaving at each exit")
plt.show()

# %% [markdown]
# ## How accurate and how confident is each exit?

# %%
from adafocus.analysis.early_exit import confidences
from adafocus.evaluate import predict

val, test = predict(model, splits["val"]), predict(model, splits["test"])
per_exit = pd.DataFrame({"accuracy": (test.exit_logits.argmax(-1) == test.labels[:, None]).float().mean(0),
                         "mean confidence": confidences(test.exit_logits).mean(0)}, index=range(1, S + 1))
ax = (100 * per_exit).plot(marker="o", figsize=(7, 3), grid=True, ylim=(0, 102))  # in %, as every plot here
ax.set(xlabel=f"exit (1..{S})", ylabel="%", title="test split, every exit computed")
plt.show()

# %% [markdown]
# ## Calibrating the thresholds
#
# `exit_proportions(ρ, S)` gives `q_k ∝ ρ^k`: small `ρ` sends most videos out at the first exits,
# `ρ = 1` spreads them evenly, large `ρ` keeps them to the end. `calibrate_thresholds` walks the
# exits in order on the validation split and sets each threshold so that the share `q_k` of the
# videos leaves there (the last exit takes everyone left).

# %%
from adafocus.analysis.early_exit import calibrate_thresholds, exit_proportions, exit_steps

fig, ax = plt.subplots(figsize=(7, 3))
for rho in (0.5, 1.0, 1.5, 2.0):
    ax.plot(range(1, S + 1), exit_proportions(rho, S), marker="o", label=f"ρ = {rho}")
ax.set(xlabel="exit", ylabel="share of videos leaving (q_k)", title="target exit proportions"); ax.legend()
plt.show()
thresholds = calibrate_thresholds(confidences(val.exit_logits), exit_proportions(1.0, S))
left_at = exit_steps(confidences(test.exit_logits), thresholds)  # (N,) the exit each test video takes
pd.DataFrame({"threshold": thresholds.numpy(), "share of test videos leaving": np.bincount(left_at, minlength=S)
              / len(left_at)}, index=range(1, S + 1)).round(3).T

# %% [markdown]
# ## Accuracy against expected cost
#
# `early_exit_curve` repeats the calibration for a sweep of `ρ` and evaluates each operating point
# on the test split. The static model (every exit computed, the last one read) is the star.

# %%
from adafocus.analysis.early_exit import early_exit_curve

curve = early_exit_curve(val.exit_logits, test.exit_logits, test.labels, costs)
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(curve["mmacs"], 100 * curve["accuracy"], "o-", color="#ff7f0e", label="early exit (one point per ρ)")
ax.plot(costs[-1] / 1e6, 100 * test.accuracy, "*", color="#d62728", markersize=14, label="no early exit")
ax.set(xlabel="expected MMACs per video", ylabel="top-1 accuracy (%)", title="sample-wise early exit, test split")
ax.grid(alpha=0.3); ax.legend()
plt.show()
curve.drop(columns="gmacs").round(3)

# %% [markdown]
# ## Real exits cost what they should
#
# `exiting_forward` runs the model step by step and drops every video at its first confident exit:
# later glance frames, the policies and the patches are never computed for it. Counting the MACs
# of that call on a batch of test videos must give the sum of `step_costs` at the exits taken, and
# the exits must be the ones the calibration predicted from the all-exits logits.

# %%
from adafocus.models.exits import exiting_forward
from adafocus.flops import count_macs

n = min(64, len(splits["test"]))
video = splits["test"].clips.videos[:n].float() / 255  # (n, T, C, H, W)
run = exiting_forward(model, video, thresholds)
measured = count_macs(lambda v: exiting_forward(model, v, thresholds), video)
expected = float(costs[run.exit_step].sum())
print(f"{n} videos: measured {measured / 1e6:.3f} MMACs, expected from their exits {expected / 1e6:.3f} MMACs, "
      f"without early exit {n * float(costs[-1]) / 1e6:.3f} MMACs")
same = (run.exit_step == left_at[:n]).float().mean()
print(f"exits agree with the calibration's prediction for {same:.0%} of the videos")
assert abs(measured - expected) <= 0.01 * expected and same >= 0.95  # within 1%; float ties aside

# %% [markdown]
# ## MACs saved are not seconds saved
#
# Stepwise, every glance frame is its own small call of the glance network, and a CPU runs small
# calls far below its peak; `glance="whole"` glances at every frame of every clip in one call and then
# reads the glance exits in turn: the same exits and predictions, every clip paying the whole glance.
# The cell times the three ways on the same test clips, interleaved (`time_interleaved`: the median of
# three timed samples, each the same clips for all three), next to their MACs per video.

# %%
from adafocus.benchmark import time_interleaved

ways = {"no early exit": lambda b: model(b["video"]),
        "early exit, glance stepwise": lambda b: exiting_forward(model, b["video"], thresholds),
        "early exit, whole glance first": lambda b: exiting_forward(model, b["video"], thresholds, glance="whole")}
speed = time_interleaved(ways, splits["test"].clips, batch_size=32, repeats=3)
seconds = pd.DataFrame({"MMACs per video": {k: count_macs(lambda v: f({"video": v}), video) / n / 1e6
                                            for k, f in ways.items()},
                        "videos per second": {k: float(np.median(v)) for k, v in speed.items()}})
mm = seconds["MMACs per video"]
assert mm.iloc[1] <= mm.iloc[2] <= mm.iloc[0]  # the whole glance costs MACs, never more than no exit at all
seconds.round(3)

# %% [markdown]
# Read the two columns side by side: the fewest MACs need not be the fastest. `benchmarks/throughput.py`
# measures the same three on the small preset at every calibrated budget (docs/design.md, "Inference
# speed"). A GPU does not restore the link either: the next cell shows the one GPU run of
# `benchmarks/throughput_gpu.py` (static models, no early exit), when its table is there; read the last
# column against the MACs ratio, batch by batch.

# %%
from pathlib import Path

gpu_csv = Path("../benchmarks/results/throughput_gpu.csv")
if gpu_csv.exists():
    gpu = pd.read_csv(gpu_csv).query("dtype == 'float32'")
    gpu = gpu.pivot_table(index=["device", "preset", "batch_size"], columns="method", values="videos_per_s")
    gpu["uni_adafocus / full_frame"] = gpu["uni_adafocus"] / gpu["full_frame"]
    display(gpu.round(2))
else:
    print(f"{gpu_csv} not found: `python benchmarks/throughput_gpu.py` on a machine with a GPU writes it")

# %% [markdown]
# ## Which videos leave early?
#
# `samplewise_redundancy` puts each clip's exit next to its difficulty knobs from the ground truth:
# the object's size and the number of frames in which it is visible. If the model's confidence
# tracks difficulty, the early leavers have larger objects or more informative frames.

# %%
from adafocus.analysis.redundancy import exit_summary, samplewise_redundancy

correct = test.exit_logits[torch.arange(len(left_at)), left_at].argmax(-1) == test.labels
per_clip = samplewise_redundancy(left_at, splits["test"], correct)
summary = exit_summary(per_clip)
summary.insert(0, "exit", summary.pop("exit_step") + 1)  # exits numbered 1..S, as in every table and plot here
summary.round(3)

# %% [markdown]
# The same question as pictures: `early_exit_gallery` shows the test clips that leave first and those
# that run to the last exit (with the thresholds of `ρ = 1` above), each with the frames the model had
# computed when it left and, on the right, its confidence at every exit against the thresholds: a clip
# leaves at the first exit where its confidence reaches the threshold. `make figures` draws it for the
# small preset's model as `figures/early_exit_gallery.png`.

# %%
from adafocus.viz.gallery import early_exit_gallery, exit_groups

groups = exit_groups(test.exit_logits, thresholds)  # the clips that leave first / run to the last exit
display(early_exit_gallery(splits["test"].clips.videos, test, thresholds, model.glance_idx))
at_exit = groups.confidence[torch.arange(len(groups.steps)), groups.steps]  # (N,) confidence where each clip left
assert groups.first and groups.last and (groups.steps[groups.last] == S - 1).all()  # ρ = 1: every exit gets clips
e, c, c_last = groups.steps[groups.first] + 1, at_exit[groups.first], at_exit[groups.last]
Markdown(f"The clips shown first leave at exit {int(e.min())}..{int(e.max())} of {S} with confidence "
         f"{c.min():.2f}..{c.max():.2f}; the {len(groups.last)} least confident of those that run to the end reach "
         f"only {c_last.min():.2f}..{c_last.max():.2f} at the last exit, and {int(correct[groups.last].sum())} of "
         "them are right.")

# %% [markdown]
# **Reading the results.** Early exit saves only where an early exit is both confident *and*
# right. In the paper the glance network (MobileNetV2 on 224² frames) recognises many videos on
# its own, so they can leave before any patch is paid for. Here the glance's own exits are as good
# as the cell below says: if they sit near chance, every video that leaves during the glance is a
# guess and the curve drops steeply as soon as `ρ` sends videos out there, and the savings must
# come from the focus steps alone (exercise 3; the benchmark does this with `usable_exits`, which
# keeps only the exits whose validation accuracy is clearly above chance). Every clip of this
# benchmark has the same number of informative frames, so only the object's size varies in the table.

# %%
from adafocus.analysis.early_exit import usable_exits

usable = usable_exits(val.exit_logits, val.labels)
assert splits["test"].clips.mask.sum(1).unique().numel() == 1  # every clip: the same number of informative frames
Markdown(f"Glance exits: accuracy **{per_exit['accuracy'].iloc[:Tg].mean():.1%}** on average, focus exits "
         f"**{per_exit['accuracy'].iloc[Tg:].mean():.1%}** (chance {1 / cfg.data.num_classes:.0%}); "
         f"{int(usable.sum())} of the {S} exits are usable (clearly above chance on validation).")

# %% [markdown]
# ## Exercises
#
# **Exercise 1: half the cost.** With a denser sweep of `ρ`, find the operating point whose
# expected cost is closest to half of the full cost. What accuracy does it keep?

# %% jupyter={"source_hidden": true}
# Solution
dense = early_exit_curve(val.exit_logits, test.exit_logits, test.labels, costs,
                         rhos=tuple(np.geomspace(0.2, 5, 25)))
half = dense.iloc[(dense["mmacs"] - costs[-1].item() / 2e6).abs().argmin()]
print(f"rho = {half['rho']:.2f}: {half['mmacs']:.3f} MMACs (full: {costs[-1] / 1e6:.3f}), "
      f"accuracy {half['accuracy']:.1%} (full: {test.accuracy:.1%})")
assert costs[0] / 1e6 <= half["mmacs"] <= costs[-1] / 1e6  # between the first exit's cost and the full cost

# %% [markdown]
# **Exercise 2: why calibrate on validation?** Calibrate the thresholds on the *test* split itself
# (cheating) at `ρ = 1` and compare the test accuracy and cost with the honest calibration.

# %% jupyter={"source_hidden": true}
# Solution
from adafocus.analysis.early_exit import evaluate_early_exit

honest = evaluate_early_exit(val.exit_logits, test.exit_logits, test.labels, costs, rho=1.0)
cheat = evaluate_early_exit(test.exit_logits, test.exit_logits, test.labels, costs, rho=1.0)
for name, r in [("calibrated on validation", honest), ("calibrated on test (cheating)", cheat)]:
    print(f"{name:30s}: accuracy {r.accuracy:.1%} at {r.expected_macs / 1e6:.3f} MMACs, "
          f"exit shares {np.round(r.exit_fraction, 2).tolist()}")
target = exit_proportions(1.0, S)
miss = {name: np.abs(np.asarray(r.exit_fraction) - target).sum() for name, r in [("honest", honest), ("cheat", cheat)]}
assert miss["cheat"] <= miss["honest"] + 0.05  # calibrated on the test split, the test shares hit the target

# %% [markdown]
# **Exercise 3: exit during the focus steps only.** Forbid exits during the glance (threshold
# `+inf`), calibrate the focus exits alone on the validation split for a few `ρ`, and compare the
# resulting curve with the one over all exits.

# %% jupyter={"source_hidden": true}
# Solution
conf_val, conf_test, rows = confidences(val.exit_logits), confidences(test.exit_logits), []
for rho in (0.5, 1.0, 1.5, 2.0, 4.0):
    focus_thr = calibrate_thresholds(conf_val[:, Tg:], exit_proportions(rho, S - Tg))
    steps = exit_steps(conf_test, torch.cat([torch.full((Tg,), float("inf")), focus_thr]))
    right = test.exit_logits[torch.arange(len(steps)), steps].argmax(-1) == test.labels
    rows.append({"rho": rho, "accuracy": right.float().mean().item(), "mmacs": costs[steps].mean().item() / 1e6})
percent = lambda df: df.assign(accuracy=100 * df["accuracy"])  # noqa: E731  accuracy in %, as in every plot
ax = percent(curve).plot(x="mmacs", y="accuracy", marker="o", label="all exits", figsize=(6, 3.2))
percent(pd.DataFrame(rows)).plot(x="mmacs", y="accuracy", marker="s", label="focus exits only", ax=ax)
ax.set(xlabel="expected MMACs per video", ylabel="top-1 accuracy (%)", title="test split"); plt.show()
assert all(r["mmacs"] >= costs[Tg].item() / 1e6 - 1e-9 for r in rows)  # every video pays for a patch
