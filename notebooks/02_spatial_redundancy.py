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
# # 02 · Spatial redundancy: how much of a frame does a classifier need?
#
# The first bet of AdaFocus: the information that decides the class sits in a small region of each
# frame, so an expensive network could look at a **patch** instead of the whole frame and lose
# little accuracy. The saving is large because a CNN's cost grows with the number of pixels: the
# paper's ResNet-50 focus network costs 1.3346 GMACs on a 128² patch and 0.7507 at 96² (Wang et al.,
# TPAMI 2024), against about three times as much on a whole 224² frame (counted below), and
# Uni-AdaFocus spends 16 such patches per video.
#
# Two questions, measured on the synthetic benchmark where we know where the object is:
#
# 1. **What does a patch cost?** Counted with `adafocus.flops`: it depends only on the patch side `P`.
# 2. **How small can the crop be?** A crop classifier sees only a square crop per frame, placed on
#    the object (*oracle*), at random or in the center; we shrink the crop and watch the accuracy.
#    The gap between *oracle* and *random* at a small crop is what a spatial policy can win.

# %% tags=["parameters"]
FAST = True  # True: the fast preset, a toy schedule (seconds; what CI runs). False: the small preset's models

# %%
# %matplotlib inline
from adafocus.notebook import notebook_setup

PRESET, cfg, splits = notebook_setup(FAST)  # data generated once, then cached under $ADAFOCUS_CACHE

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown
import torch

from adafocus.config import get_config

S = cfg.data.frame_size

# %% [markdown]
# ## How small is the object?
#
# From the ground truth: the side of the object's box over all test frames, in pixels. The
# spatial policy chooses boxes with sides in `[box_min, box_max]` (dashed lines).

# %%
boxes = splits["test"].clips.boxes  # (N, T, 4) pixels, x0 y0 x1 y1
sides = (boxes[..., 2:] - boxes[..., :2]).flatten(0, 1)  # (N * T, 2) width, height
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(sides.flatten().numpy(), bins=30, color="#2ca02c")
for side in (cfg.model.box_min, cfg.model.box_max):
    ax.axvline(side, color="k", linestyle="--", linewidth=1)
ax.set(xlabel="box side (pixels)", ylabel="frames", title=f"object size in {S}x{S} frames")
plt.show()
print(f"the box covers {100 * (sides.prod(-1) / S**2).mean():.0f}% of the frame's area on average")

# %% [markdown]
# ## A box of any size becomes a `P x P` patch
#
# The spatial policy chooses a box; the box is **resampled** to a fixed `P x P` patch (bilinear
# `grid_sample`) before the focus network sees it. A big box is seen at lower resolution, a small
# box at higher resolution, and every patch costs the same. Three boxes around the same object:

# %%
from adafocus.analysis.redundancy import placement_boxes
from adafocus.models.patches import crop_patches
from adafocus.viz.explorers import to_rgb

item = splits["test"][1]
t = torch.tensor([[int(item["mask"].float().argmax())]])  # (1, 1): the first frame that shows the object
crop_sides = [cfg.model.box_min, (cfg.model.box_min + cfg.model.box_max) / 2, cfg.model.box_max]
crops = torch.cat([placement_boxes("oracle", s, t, item["boxes"][None], S)[0] for s in crop_sides])  # (3, 4)
P = cfg.model.patch_size
frame = item["video"][t[0, 0]]  # (C, H, W)
patches = crop_patches(frame.expand(3, -1, -1, -1), crops, P)  # (3, C, P, P)

# %%
fig, axes = plt.subplots(1, 4, figsize=(9, 2.4))
axes[0].imshow(to_rgb(frame), extent=(0, S, S, 0))
for ax, patch, box, side in zip(axes[1:], patches, crops, crop_sides):
    axes[0].add_patch(plt.Rectangle(box[:2].tolist(), side, side, fill=False, color="magenta"))
    ax.imshow(to_rgb(patch)); ax.set_title(f"{side:.0f} px box -> {P}x{P}", fontsize=9); ax.axis("off")
axes[0].set_title(f"frame {int(t)} ({S}x{S})", fontsize=9); axes[0].axis("off")
plt.show()

# %% [markdown]
# ## What a patch costs
#
# The focus network's MACs for one patch of side `P`, counted by running it: left at this preset's
# sizes, right the paper's ResNet-50 (the `full` preset) with the published values (Wang et al.,
# TPAMI 2024) as crosses.
# Cost grows like `P²`: halving the side saves three quarters.

# %%
from adafocus.flops import count_macs
from adafocus.models.registry import create_model

def focus_macs(config, sides):
    focus = create_model("uni_adafocus", config).focus.eval()
    return [count_macs(focus, torch.zeros(1, config.data.channels, p, p)) for p in sides]

ours = [p for p in (8, 12, 16, 24, 32, 48, 64) if p <= S]
paper = [96, 128, 160, 192, 224]
ours_macs, paper_macs = focus_macs(cfg, ours), focus_macs(get_config("full"), paper)
published = {96: 0.7507, 128: 1.3346, 160: 2.0853, 192: 3.0028}  # GMACs, ResNet-50 without its fc

# %%
fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
a.plot(ours, [m / 1e6 for m in ours_macs], "o-")
a.set(xlabel="patch side P (pixels)", ylabel="MMACs per patch", title=f"focus network, {cfg.name} preset")
b.plot(paper, [m / 1e9 for m in paper_macs], "o-", label="counted")
b.plot(list(published), list(published.values()), "kx", markersize=10, label="published")
b.set(xlabel="patch side P (pixels)", ylabel="GMACs per patch", title="ResNet-50 (paper's sizes)")
b.legend()
for ax in (a, b):
    ax.grid(alpha=0.3)
plt.show()
assert all(abs(m / 1e9 - published[p]) < 0.005 * published[p] for p, m in zip(paper, paper_macs) if p in published)
frame_vs_patch = paper_macs[-1] / paper_macs[1]  # a whole 224² frame against a 128² patch
assert 2.5 < frame_vs_patch < 3.5  # "about three times as much" (the introduction)
print(f"counted = published within 0.5%; a 224² frame costs {frame_vs_patch:.1f}x a 128² patch")

# %% [markdown]
# ## How small can the crop be?
#
# We need a classifier that reads crops of the object. The **oracle** model is one: the same network
# as Uni-AdaFocus, but handed the true boxes (jittered in position and size in training) at the truly
# informative frames: its supervision is `oracle`, the upper bound of any patch policy, never a
# label-free model. We train it (cached) and run `spatial_redundancy`: for every crop side and
# placement, a square crop per frame
# at the `K` informative frames of every test clip, resampled to `P x P`, classified by the focus
# network alone (`head="focus"`). `gt_iou` is the crop's overlap with the true box.

# %%
from adafocus.analysis.redundancy import spatial_redundancy
from adafocus.notebook import train_model

crop_model = train_model("oracle", cfg, splits).model  # true boxes at the informative frames
sizes = sorted({round(f * S) for f in (0.125, 0.25, 0.375, 0.5, 0.75, 1.0)})
study = spatial_redundancy(crop_model, splits["test"], sizes)
study.pivot(index="crop_size", columns="placement", values="accuracy").round(3)

# %%
fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
for placement, rows in study.groupby("placement"):
    a.plot(rows["crop_size"], 100 * rows["accuracy"], "o-", label=placement)
    b.plot(rows["crop_size"], rows["gt_iou"], "o-", label=placement)
a.axhline(100 / cfg.data.num_classes, color="grey", linestyle=":", label="chance")
a.set(xlabel="crop side (pixels of the frame)", ylabel="top-1 accuracy (%)", title="crop classifier, test split")
b.set(xlabel="crop side (pixels of the frame)", ylabel="IoU with the true box", title="overlap with the object")
for ax in (a, b):
    ax.grid(alpha=0.3); ax.legend(fontsize=8)
plt.show()
acc = study.pivot(index="crop_size", columns="placement", values="accuracy")
near = acc.index[abs(acc.index - float(sides.mean())).argmin()]  # the crop side closest to the object's
gap = acc.loc[near, "oracle"] - acc.loc[near, "random"]
Markdown(f"At a crop of {near:.0f} px (the object's size) the oracle placement reaches {acc.loc[near, 'oracle']:.1%}, "
         f"a random one {acc.loc[near, 'random']:.1%}: a gap of {100 * gap:.0f} points for a spatial policy to win.")

# %% [markdown]
# **Reading the plot.** At the full frame (rightmost point) the three placements coincide: it is
# the same crop, the whole frame shrunk to `P x P`, where the object is only a few pixels, and a
# classifier trained on object-sized crops has never seen it that small (a network trained on whole
# frames does far better, at many times the cost: notebook 06). As the crop shrinks towards the
# object's size, an *oracle* crop keeps the object and sees it at a higher resolution: accuracy
# climbs. Below the object's size the crop cuts into the object and accuracy falls again. A
# *random* crop of the object's size usually misses it and stays near chance; the *center* crop is
# right only when the object happens to pass the middle. The vertical distance between *oracle*
# and *random* near the object's size is the prize a spatial policy competes for. With
# `FAST = True` the crop classifier has trained for seconds on a few hundred clips, so the curves are noisy;
# `FAST = False` shows the small preset's model.
#
# ## Exercises
#
# **Exercise 1: what the glance adds.** Repeat the study with `head="final"`: the last exit sees
# the crops *and* the glance network's low-resolution view of every whole frame. Which placement
# gains most, and why?

# %% jupyter={"source_hidden": true}
# Solution
final = spatial_redundancy(crop_model, splits["test"], sizes, head="final")
both = study.merge(final, on=["placement", "crop_size"], suffixes=("_focus", "_final"))
both["gain"] = both["accuracy_final"] - both["accuracy_focus"]
gain = both.groupby("placement")["gain"].mean()
display(both.pivot(index="crop_size", columns="placement", values="gain").round(3))
assert gain["random"] > gain["oracle"] - 0.05  # the glance helps most where the crop misses the object

# %% [markdown]
# **Exercise 2: how many fewer pixels?** Find the best *oracle* crop and the smallest one whose
# accuracy is within 5 points of it. A network running at native resolution on that crop would
# process how many times fewer pixels than on the whole frame?

# %% jupyter={"source_hidden": true}
# Solution
oracle = study[study["placement"] == "oracle"].set_index("crop_size")["accuracy"]
best = oracle.idxmax()
side = int(oracle[oracle >= oracle[best] - 0.05].index.min())
print(f"best oracle crop {best:.0f} px: {oracle[best]:.1%}; "
      f"smallest within 5 points: {side} px ({oracle[side]:.1%})")
print(f"{(S / side) ** 2:.1f}x fewer pixels than the {S}x{S} frame")
assert side < S and oracle[side] >= oracle[best] - 0.05  # a crop smaller than the frame suffices

# %% [markdown]
# **Exercise 3: when is the center crop right?** With `crop_classifier` (the function the study
# uses), classify center crops of side `box_max` for every test clip and compare the accuracy of
# clips whose object stays near the center with the others.

# %% jupyter={"source_hidden": true}
# Solution
from adafocus.analysis.redundancy import crop_classifier
from adafocus.models.sampling import sample_frames

classify, clips = crop_classifier(crop_model), splits["test"].clips.subset(range(min(256, len(splits["test"]))))
idx = sample_frames(clips.mask.float(), cfg.data.num_frames, cfg.model.num_focus, train=False)  # (N, K)
center = placement_boxes("center", cfg.model.box_max, idx, clips.boxes, S)
with torch.no_grad():
    right = classify(clips.videos.float() / 255, center, idx).argmax(-1) == clips.labels
offset = ((clips.boxes[..., :2] + clips.boxes[..., 2:]) / 2 - S / 2).norm(dim=-1).mean(1)  # (N,) pixels
near = offset < offset.median()
near_acc, far_acc = right[near].float().mean(), right[~near].float().mean()
print(f"object near the center: {near_acc:.1%}, far from it: {far_acc:.1%}")
assert near_acc >= far_acc - 0.05  # the center crop is right more often when the object passes the middle
