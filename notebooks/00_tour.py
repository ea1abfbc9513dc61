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
# # 00 · A tour of Uni-AdaFocus in ten minutes
#
# A video classifier that runs a big CNN on every pixel of every frame wastes most of its work in
# three ways:
#
# - **spatial redundancy**: what tells you the class covers a small part of each frame;
# - **temporal redundancy**: only some frames show it; the rest add nothing;
# - **sample-wise redundancy**: easy videos could be answered after a quick look, hard ones need more.
#
# **Uni-AdaFocus** (Wang et al., TPAMI 2024) attacks all three in one network. A cheap *glance*
# network skims the clip; a *spatial policy* decides where to look (a box per frame), a *temporal
# policy* decides when (which `K` frames); an expensive *focus* network sees only those `K` small
# patches; a classifier with an *exit after every step* stops as soon as it is confident. The
# policies learn from the video's class label alone. On ActivityNet the paper reports 80.7% mAP at
# 27.2 GMACs per video (the best earlier method: 76.9% at 21.7), and with early exit 78.3% at 9.1
# GMACs (Wang et al., TPAMI 2024).
#
# This notebook runs the whole story once: **data → model → train a small one → where it looked →
# what it cost**. The later notebooks take each step apart.

# %% tags=["parameters"]
FAST = True  # True: the fast preset, a toy schedule (seconds; what CI runs). False: the small preset's models

# %%
# %matplotlib inline
from adafocus.notebook import notebook_setup

PRESET, cfg, splits = notebook_setup(FAST)  # data generated once, then cached under $ADAFOCUS_CACHE

# %% [markdown]
# ## 1. The data: redundancy you can see
#
# Real datasets cannot be downloaded here, and nobody knows where their information sits anyway.
# The workbench's default benchmark is synthetic: a small handwritten digit (the label) moves over
# a cluttered photo and is visible only in some frames. Every clip carries its **ground truth**:
# the digit's box in every frame (solid where the digit is visible, dashed where it is hidden;
# the colours are printed under the filmstrip, from the palette the figures use) and the mask of
# informative frames. The models never train on it (the oracle aside); we use it to *score* them.
# Notebook 01 explains the generator and its knobs.

# %%
import pandas as pd
from IPython.display import Markdown

from adafocus.data import redundancy_summary
from adafocus.data.preview import filmstrip_figure

from adafocus.viz import colors

display(filmstrip_figure(splits["test"].clips, [0, 1, 2]))  # a matplotlib Figure (not pyplot's): display it
display(Markdown("**Colour key** (every figure of the workbench): " + colors.color_key()))
share = redundancy_summary(splits["test"].clips)
Markdown(f"The digit's box covers **{share['box_fraction']:.1%}** of a frame and is visible in "
         f"**{share['informative_fraction']:.0%}** of the frames: **{share['useful_fraction']:.1%}** of the pixels "
         "carry the label. A network that processes everything spends almost all of its work elsewhere.")

# %% [markdown]
# ## 2. The model: glance, decide, focus, classify
#
# One class, `UniAdaFocus`, with switches; `create_model(name, cfg)` builds a named variant (the
# method itself, its special cases such as AdaFocusV2, and the baselines). Its parts:
#
# | part | what it does | paper | here |
# |---|---|---|---|
# | `glance` | cheap CNN on `T_g` frames | MobileNetV2 on 224² | narrow MobileNetV2 |
# | `spatial_policy` | a box per glance frame | 3-D convs + conv head | 3-D convs + soft-argmax head |
# | `temporal_policy` | a distribution `w` over the glance frames → `K` frames | 1-D convs | 1-D convs |
# | `focus` | expensive CNN on `K` patches resampled to `P x P` | ResNet-50, P = 96..192 | small ResNet |
# | `classifier` | an exit after every glance frame and every patch | MLP + max-pool | the same |

# %%
from adafocus.models.registry import create_model, list_models

model = create_model("uni_adafocus", cfg).eval()
for name, part in model.named_children():
    print(f"{name:16s} {sum(p.numel() for p in part.parameters()):>9,d} parameters")
print("registered models:", ", ".join(list_models()))

# %% [markdown]
# `model.plan(video)` decides what to look at (glance frames, `w`, the `K` frames, a box
# `(x0, y0, x1, y1)` in pixels for each); `model.run(video, plan)` looks and answers, with one
# prediction per exit. Untrained, `w` is close to uniform (evenly spaced frames).

# %%
import torch

video = splits["test"][0]["video"][None]  # a batch of one clip (1, T, C, H, W)
with torch.no_grad():
    plan = model.plan(video)
    out = model.run(video, plan)
print("exit logits", tuple(out.exit_logits.shape), "= (batch, T_g glance exits + K focus exits, classes)")
print("glance frames", out.glance_idx[0].tolist(), "-> chosen frames", out.frame_idx[0].tolist())
print("boxes", out.boxes[0].round().tolist())

# %% [markdown]
# ## 3. Train one
#
# `train_model(name, cfg, splits)` trains as the benchmark does: a **shared pretraining** of the
# glance and focus backbones on an object-centric *image* set (one digit over clutter per image,
# class labels only: the analogue of the paper's ImageNet weights), then **one stage** end to end
# with the label-free `cpu` recipe (notebook 04). The patches are cropped with *detached* boxes; the
# policies learn through differentiable *surrogate* losses. Checkpoints are cached by the config's
# hash, so running this again (or another notebook with the same config) loads instantly. It prints
# which supervision the model had: `none` means the class label only.

# %%
import matplotlib.pyplot as plt

from adafocus.notebook import train_model
from adafocus.viz.plots import learning_curves

result = train_model("uni_adafocus", cfg, splits)
model = result.model  # in eval mode
learning_curves(result.history, title=f"Uni-AdaFocus ({cfg.name} preset): validation accuracy")
plt.show()
result.history[["epoch", "train_loss", "train_acc", "val_acc", "seconds"]].round(3)

# %% [markdown]
# ## 4. Where did it look?
#
# The benchmark knows where the digit is, so the policy can be scored: `box_iou` is the overlap
# of the chosen boxes with the true box (at frames where the digit is visible) next to
# `random_box_iou`, boxes of the same size placed at random; `frame_recall` is the share of
# informative frames the temporal policy found, next to `uniform_frame_recall` for evenly spaced
# frames. A policy that learned something beats its reference.

# %%
from adafocus.notebook import evaluation_row

report = evaluation_row(model, cfg, splits["test"])
n = cfg.data.num_classes
display(pd.Series(report).round(3).rename("uni_adafocus, test split"))
Markdown(f"Test accuracy **{report['accuracy']:.1%}** ({n} classes, chance {1 / n:.0%}); boxes overlap the truth "
         f"{report['box_iou'] / report['random_box_iou']:.1f}x as much as random boxes of the same size; frame "
         f"recall {report['frame_recall']:.2f} against {report['uniform_frame_recall']:.2f} for evenly spaced frames.")

# %% [markdown]
# One clip: each frame with its true box, the patches the model cropped (on the frames it chose,
# which also get a coloured border; the legend above the frames names each box) and, underneath,
# the temporal policy's weights `w` over the glance frames with the informative frames shaded.

# %%
from adafocus.notebook import show_policy

show_policy(model, splits["test"][1])
plt.show()

# %% [markdown]
# ## 5. What did it cost?
#
# Cost is counted, not estimated: `adafocus.flops` runs the model under torch's FLOP counter and
# reports **multiply-accumulates (MACs)**, the unit the paper calls FLOPs. The focus network's
# cost depends only on the patch size `P`, never on the box, so a few small patches are far
# cheaper than whole frames.

# %%
from adafocus.flops import model_cost
from adafocus.viz.plots import METHOD_STYLE, method_label

names = ["glance_only", "uni_adafocus", "lowres_full_frame", "full_frame"]
mmacs = {name: 1e3 * model_cost(name, cfg)["total_gmacs"] for name in names}
fig, ax = plt.subplots(figsize=(6.5, 2.6))
ax.barh([method_label(n) for n in names], list(mmacs.values()), color=[METHOD_STYLE[n][1] for n in names])
ax.set(xlabel="MMACs per video (10^6 multiply-accumulates)", title=f"Cost of one video, {cfg.name} preset")
plt.show()
ratio = mmacs["full_frame"] / mmacs["uni_adafocus"]
Markdown(f"Uni-AdaFocus costs {mmacs['uni_adafocus']:.2f} MMACs per video here: " + (
    f"{ratio:.1f}x fewer than the full-frame baseline." if ratio > 1 else f"{1 / ratio:.1f}x *more* than the "
    "full-frame baseline, whose frames are so small at this preset that patches save nothing (FAST = False)."))

# %% [markdown]
# The same counter at the paper's sizes (`get_config("full")`: 224² frames, MobileNetV2 glance on
# 16 frames, ResNet-50 focus on 16 patches of 128²) reproduces the published per-video total of
# 27.23 GMACs (Wang et al., TPAMI 2024), component by component:

# %%
from adafocus.config import get_config

paper = model_cost("uni_adafocus", get_config("full"))
assert abs(paper["total_gmacs"] - 27.23) < 0.05, paper["total_gmacs"]  # the published total, within 0.2%
print(f"total: {paper['total_gmacs']:.2f} GMACs per video (published: 27.23)")
pd.Series(paper["components"]).round(4).rename("GMACs per video")

# %% [markdown]
# The same count at each patch side of the paper, `P` = 96..192, stacked by component: `make demo`
# writes the table (`benchmarks/results/paper_costs.csv`) and `make figures` draws it as
# `figures/paper_costs.png`. Which part grows with `P`, and how much of the video's cost is it?

# %%
from adafocus.figures import paper_cost_components, paper_costs_figure
from adafocus.notebook import results_table

costs = results_table("paper_costs.csv", ("patch_size", "total_gmacs"))
assert abs(costs.set_index("patch_size").loc[128, "total_gmacs"] - paper["total_gmacs"]) < 1e-3  # = the count above
parts = paper_cost_components(costs)  # GMACs per video: index P, a column per component
paper_costs_figure(costs)
plt.show()
focus = parts.filter(like="focus").iloc[:, 0] / parts.sum(axis=1)  # the focus network's share of each total
fixed = [c for c in parts if not c.startswith(("focus", "patch"))]
assert (parts[fixed].nunique() == 1).all() and focus.is_monotonic_increasing  # only the patches grow with P
Markdown(f"Only the focus patches (and their bilinear crops) grow with `P`: they take **{focus.min():.0%}** of the "
         f"MACs at P = {focus.idxmin()} and **{focus.max():.0%}** at P = {focus.idxmax()}; the glance, the policies "
         f"and the classifier cost {parts[fixed].iloc[0].sum():.2f} GMACs at every `P`.")

# %% [markdown]
# ## Where next
#
# | notebook | what it takes apart |
# |---|---|
# | 01 the data | the generator, its knobs and its ground truth |
# | 02 spatial redundancy | how small a crop can be, and what a patch costs |
# | 03 temporal redundancy | how many frames matter; sampling `K` frames from `w` |
# | 04 training | the paper's label-free signal, why it failed with a blind glance, what fixed it |
# | 05 patch trajectories | explore where a trained model looks, frame by frame |
# | 06 accuracy vs MACs | the benchmark: every method and budget on one plot |
# | 07 early exit | sample-wise savings, calibrated on validation, with real exits |
# | 08 what the model looks at | attributions with captum |
# | 09 your own videos | a folder of mp4 files and a label file, end to end |
#
# ## Exercises
#
# **Exercise 1: the price of a bigger patch.** The focus network's cost grows with the patch side
# `P`. Count the focus cost per patch for a few values of `P` (`model.patch_size` override) and
# check that it grows roughly like `P²`.

# %% jupyter={"source_hidden": true}
# Solution
per_pixel = {}
for P in (8, 16, 24, 32):
    cost = model_cost("uni_adafocus", cfg.replace(**{"model.patch_size": P}))
    per_patch = 1e3 * cost["components"]["focus_per_patch"]
    per_pixel[P] = per_patch / P**2 * 1e3
    print(f"P = {P:2d}: {per_patch:7.3f} MMACs per patch, {per_pixel[P]:.2f} kMACs per pixel")
assert max(per_pixel.values()) < 2 * min(per_pixel.values())  # about constant per pixel: cost ~ P²

# %% [markdown]
# **Exercise 2: does seeing the digit help?** For every test clip, count how many of the model's
# `K` chosen frames show the digit (`preds.gt_mask` at `preds.frame_idx`). Compare that count on
# the clips the model classifies correctly and on those it gets wrong.

# %% jupyter={"source_hidden": true}
# Solution
from adafocus.evaluate import predict

preds = predict(model, splits["test"])
shown = preds.gt_mask.gather(1, preds.frame_idx).sum(dim=1).float()  # (N,) chosen frames that show the digit
correct = preds.logits.argmax(-1) == preds.labels
K = preds.frame_idx.shape[1]
for name, group in [("classified correctly", correct), ("classified wrongly", ~correct)]:
    print(f"{name:20s}: {int(group.sum()):5d} clips, the digit in {shown[group].mean():.2f} of the {K} chosen frames")
assert correct.any() and (~correct).any()  # both groups have clips (the model is neither perfect nor useless)

# %% [markdown]
# **Exercise 3: what do the patches add?** Train the `glance_only` baseline (the glance network and
# its exits, no patches) and compare its accuracy and cost with Uni-AdaFocus.

# %% jupyter={"source_hidden": true}
# Solution
glance = train_model("glance_only", cfg, splits).model
accs = {name: predict(m, splits["test"]).accuracy for name, m in [("glance_only", glance), ("uni_adafocus", model)]}
for name in accs:
    print(f"{name:13s} accuracy {accs[name]:.1%} at {mmacs[name]:.2f} MMACs per video")
assert mmacs["glance_only"] < mmacs["uni_adafocus"]  # the patches cost extra ...
assert accs["uni_adafocus"] >= accs["glance_only"] - 0.05  # ... and buy accuracy (at least not lose it, 5 points)
