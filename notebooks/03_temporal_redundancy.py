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
# # 03 · Temporal redundancy: which frames matter?
#
# The second bet: most frames of a video add little. A network that processes frames at evenly
# spaced times spends much of its budget on frames where nothing useful is visible. Uni-AdaFocus
# lets a **temporal policy** read the cheap glance features of `T_g` frames and output a
# distribution `w` over them; `K` focus frames are then drawn from `w` (in the paper, 16 focus frames
# out of 48 on ActivityNet). The synthetic benchmark makes the question exact: every clip carries the
# mask of frames in which the object is visible.
#
# This notebook measures (1) what evenly spaced frames see, (2) how `K` frames are drawn from `w`
# (stratified inverse-CDF sampling), (3) how accuracy grows with the number of frames, and (4) what
# a trained model's temporal policy does.

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

from adafocus.notebook import train_model

T, K, Tg = cfg.data.num_frames, cfg.model.num_focus, cfg.model.glance_frames

# %% [markdown]
# ## What do evenly spaced frames see?
#
# For every `k`, the uniform grid of `k` frames (`floor((j + 1/2) T / k)`): the share of clips in
# which at least one of them shows the object, and the share of the `k` frames that do.

# %%
from adafocus.models.sampling import uniform_indices

mask = splits["test"].clips.mask  # (N, T) True where the object is visible
rows = []
for k in range(1, T + 1):
    seen = mask[:, uniform_indices(T, k)]  # (N, k)
    rows.append({"k": k, "sees it at least once": seen.any(1).float().mean().item(),
                 "informative share of the k frames": seen.float().mean().item()})
grid = pd.DataFrame(rows).set_index("k")
ax = grid.plot(marker="o", figsize=(6, 3.2), grid=True, ylim=(0, 1.05), xlabel="k evenly spaced frames",
               ylabel="share", title=f"uniform frames, {T}-frame clips (K = {K} marked)")
ax.axvline(K, color="grey", ls=":")
plt.show()
assert (grid["informative share of the k frames"] - mask.float().mean().item()).abs().max() < 0.1  # whatever k is

# %% [markdown]
# Evenly spaced frames see the object in about the share of frames where it is visible (the
# benchmark's `informative_fraction`), whatever `k` is (the cell asserts it, within 0.1): with the
# default knob, half of the focus budget lands on empty frames. A policy that knew the mask could do
# better with the same `K`.
#
# ## Drawing `K` frames from `w`: stratified inverse-CDF sampling
#
# The temporal policy outputs `w`, a distribution over the `T_g` glance positions. Read it as a
# piecewise-constant density over the clip's time axis; its CDF is piecewise linear. Split [0, 1]
# into `K` equal strata, take one quantile per stratum (a random one in training, the midpoint at
# test), map it through the inverse CDF to a time and round it to a frame; collisions are pushed to
# the next free frame. Bins with much mass catch many quantiles; the strata keep frames spread out.

# %%
from adafocus.models.sampling import sample_frames

w = torch.full((1, Tg), 0.2 / Tg)
w[0, Tg // 2:] += 0.8 / (Tg - Tg // 2)  # 80% of the mass on the second half of the clip
at_test = sample_frames(w, T, K, train=False)[0]
draws = torch.cat([sample_frames(w, T, K, train=True) for _ in range(2000)])  # (2000, K) training draws
fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3))
a.bar((torch.arange(Tg) + 0.5) * T / Tg - 0.5, w[0], width=0.8 * T / Tg)
a.set(xlabel="time (frames)", ylabel="w (mass per glance bin)", title="the policy's distribution w")
b.hist(draws.flatten().numpy(), bins=torch.arange(T + 1).numpy() - 0.5, density=True, rwidth=0.8)
b.vlines(at_test.numpy(), 0, 0.05, colors="magenta", linewidth=3, label="test-time frames")
b.set(xlabel="frame index", ylabel="share of draws", title=f"K = {K} frames drawn in training"); b.legend()
plt.show()

# %% [markdown]
# ## How many frames does the classifier need?
#
# We take the **oracle** model (handed the true boxes in training and here, so space is not the
# issue; its supervision is `oracle`) and give it `k` evenly spaced frames for `k = 1 .. T`
# (`temporal_redundancy`, focus-only head). Then, at the model's budget `K`, the same classifier on
# `K` *informative* frames (`frame_mode="oracle"`): the accuracy a perfect temporal policy would buy.

# %%
from adafocus.analysis.redundancy import temporal_redundancy
crop_model = train_model("oracle", cfg, splits).model  # true boxes, K frames
study = temporal_redundancy(crop_model, splits["test"], ks=list(range(1, T + 1)))
ax = study.plot(x="k", y="accuracy", marker="o", figsize=(6, 3.2), grid=True, label="uniform frames, true boxes")
ax.axhline(1 / cfg.data.num_classes, color="grey", ls=":", label="chance")
ax.set(xlabel="frames seen (k)", ylabel="top-1 accuracy", title="accuracy against the number of frames")
ax.legend(); plt.show()

# %%
from adafocus.notebook import accuracy_with_modes

frame_acc = {f: accuracy_with_modes(crop_model, splits["test"], frame_mode=f) for f in ("uniform", "oracle")}
Markdown(f"At the budget K = {K}, with true boxes: **{frame_acc['uniform']:.1%}** on evenly spaced frames, "
         f"**{frame_acc['oracle']:.1%}** on informative frames: what a perfect temporal policy would buy.")

# %% [markdown]
# ## What the trained model's temporal policy does
#
# Uni-AdaFocus trains `w` from the class label alone, through a surrogate: the glance's per-frame
# logits are averaged with weights `w` (over Monte Carlo draws that drop some frames) and classified,
# so mass moves to frames whose glance logits name the class. Does `w` end up on
# the informative frames? We compare the mean weight of glance frames that show the object with
# those that do not, and the frames it picked (`frame_recall`) with the uniform grid.

# %%
from adafocus.evaluate import policy_report, predict

model = train_model("uni_adafocus", cfg, splits).model  # label-free: prints its supervision
preds = predict(model, splits["test"])
shown = preds.gt_mask[:, model.glance_idx]  # (N, T_g) is the object visible at each glance frame?
w = preds.temporal_weights  # (N, T_g)
report = policy_report(preds, T, cfg.data.frame_size)
Markdown(f"Mean `w` on glance frames that show the object: **{w[shown].mean():.3f}**, on the others: "
         f"**{w[~shown].mean():.3f}** (uniform: {1 / Tg:.3f}). Frame recall **{report['frame_recall']:.2f}** "
         f"against **{report['uniform_frame_recall']:.2f}** for evenly spaced frames.")

# %% [markdown]
# ## Which frames does the model rely on?
#
# Leave one frame out (replace it by the clip's mean frame, run the whole model again) and measure
# the drop in the true class's probability (`frame_importance`). If the model relies on the frames
# that show the object, those drops are larger and correlate with the mask.

# %%
from adafocus.analysis.redundancy import frame_importance, importance_correlation
from adafocus.data.synthetic import SyntheticVideoDataset

n = min(128, len(splits["test"]))  # leave-one-out runs the model T + 1 times per clip
subset = SyntheticVideoDataset(splits["test"].clips.subset(range(n)), cfg.data, "test")
importance = frame_importance(model, subset)
print(f"correlation of the drop with the mask: {importance_correlation(importance):.2f}")
ax = importance.groupby("frame")["drop"].mean().plot.bar(figsize=(6, 2.8), color="#1f77b4", rot=0)
ax.set(xlabel="frame index", ylabel="mean drop of p(true class)", title="leave-one-frame-out")
plt.show()
importance.groupby("informative")["drop"].mean().rename("mean drop").to_frame()

# %% [markdown]
# The numbers above are this run's. How far `w` moves from uniform depends on what the glance can
# see: the temporal surrogate classifies *glance* logits, and a glance that cannot tell the classes
# apart gives it nothing to prefer one frame over another (notebook 04 shows the diagnostic, and how
# the shared pretraining on the image set gave the glance its eyes). With `FAST = True` the model
# has trained for seconds on the fast preset, so read the comparison with the uniform grid rather
# than the values; with `FAST = False` it is the small preset's label-free model from `make demo`.
#
# ## Exercises
#
# **Exercise 1: how many evenly spaced frames?** From the `grid` table, the smallest `k` for which
# the uniform grid sees the object in at least 95% of the clips. How does it compare with `K`?

# %% jupyter={"source_hidden": true}
# Solution
enough = grid[grid["sees it at least once"] >= 0.95]
k95 = int(enough.index.min()) if len(enough) else None
print(f"k = {k95} evenly spaced frames see the object in 95% of the clips (the model's K = {K})")
assert k95 is not None and k95 >= K - 1  # a handful of evenly spaced frames is needed, about as many as K

# %% [markdown]
# **Exercise 2: accuracy after each focus step.** `temporal_redundancy(model, ..., head="exit")`
# reads the model's own exit after `k = 0 .. K` focus steps (`k = 0`: the glance alone). How much
# does each patch add?

# %% jupyter={"source_hidden": true}
# Solution
steps = temporal_redundancy(model, splits["test"], ks=list(range(0, K + 1)), head="exit")
display(steps[["k", "accuracy", "informative_fraction"]].round(3))
assert steps["accuracy"].iloc[-1] >= steps["accuracy"].iloc[0] - 0.05  # the patches add (or at least keep) accuracy

# %% [markdown]
# **Exercise 3: a peaked `w`.** Put all of `w`'s mass on one glance frame and sample at test time.
# Where do the `K` frames go, and why are they all distinct?

# %% jupyter={"source_hidden": true}
# Solution
peak = torch.zeros(1, Tg)
peak[0, Tg // 4] = 1.0
print("frames:", sample_frames(peak, T, K, train=False)[0].tolist(),
      f"(glance bin {Tg // 4} covers frames {Tg // 4 * T // Tg}..{(Tg // 4 + 1) * T // Tg - 1})")
print("collisions are pushed to the next free frame, so the K frames cluster right after the peak")
frames = sample_frames(peak, T, K, train=False)[0]
assert len(set(frames.tolist())) == K and frames.min() >= Tg // 4 * T // Tg  # K distinct frames from the peak on
