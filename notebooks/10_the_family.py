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
# # 10 · The AdaFocus family
#
# Uni-AdaFocus is the fourth step of one idea: *spend the expensive network only on a small patch
# of a few frames*. Each step changed how the patch is chosen or what it is:
#
# | generation | how the patch is chosen | what the focus network sees |
# |---|---|---|
# | **V1** (ICCV 2021) | a grid cell, by a recurrent policy trained with PPO (three stages) | a 2-D patch per frame |
# | **V2** (CVPR 2022) | a box regressed end to end through a differentiable crop, one stage | a 2-D patch per frame |
# | **V3** (ECCV 2022) | one box per clip | a space-time cube for a 3-D network (X3D) |
# | **Uni** (TPAMI 2024) | where, when and how much (exits), from surrogate losses | patches of K chosen frames |
#
# The backbone is the second axis: a 2-D network that treats frames alone (TSN-style, the ResNet of
# the other chapters), the same network with a **temporal shift** (TSM: a share of the channels
# comes from the neighbouring frames; a memory move, no arithmetic: Exercise 1 checks it), or a
# network with 3-D convolutions (X3D). This chapter puts every
# family member on the workbench's benchmarks, label-free: the digits benchmark of the other
# chapters, and a motion benchmark whose class is the digit *and the direction it moves in*
# (`data.motion = "direction"`; docs/design.md, "The synthetic benchmark"), which a network that
# treats frames alone cannot read.
#
# `make family` trains the family at the small geometry (cached) and writes the tables this
# notebook reads in full mode. With `FAST = True` it trains a toy family at the fast preset instead:
# the machinery, not the numbers.

# %% tags=["parameters"]
FAST = True  # True: the fast preset, a toy schedule (seconds; what CI runs). False: the `make family` results

# %%
# %matplotlib inline
from adafocus.notebook import notebook_setup

PRESET, cfg, splits = notebook_setup(FAST)  # data generated once, then cached under $ADAFOCUS_CACHE

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown

from adafocus.family import MEMBERS, family_table, motion_config, train_family
from adafocus.viz.plots import family_accuracy_vs_macs

motion_cfg = motion_config(cfg)  # data.motion = "direction", the TSM variant's scale regulariser 0.5
table = train_family(cfg, motion_cfg, longer_budgets=False) if FAST else family_table()  # FAST: every member
# trains the preset's epochs (`make family` gives the slower learners their longer budgets)
display(table.drop(columns=["learns"]).round(3))

# %% [markdown]
# ## The family on one figure
#
# Accuracy against MMACs per video, one panel per benchmark (a model is compared only with models
# trained on the same data). This is the workbench's analogue of the paper's family comparison.

# %%
family_accuracy_vs_macs(table, title=f"The AdaFocus family ({PRESET} preset, test split, label-free)")
plt.show()
by = table.set_index("method")
if not FAST:  # the small geometry's own claims, computed from the table
    tsm_gap = 100 * (by.loc["uni_adafocus_tsm", "accuracy"] - by.loc["uni_adafocus_tsn", "accuracy"])
    v1_gap = 100 * (by.loc["uni_adafocus", "accuracy"] - by.loc["adafocus_v1", "accuracy"])
    display(Markdown(f"On the motion benchmark the temporal shift is worth **{tsm_gap:+.1f} points** at the same "
                     f"MACs; Uni-AdaFocus beats V1 by **{v1_gap:.1f} points** at "
                     f"{by.loc['uni_adafocus', 'mmacs'] / by.loc['adafocus_v1', 'mmacs']:.2f}x its MACs."))

# %% [markdown]
# ## Why reinforcement learning gave way to a differentiable crop
#
# V1's policy learns from a reward (how much more confident the classifier became after each
# patch), sampled one action at a time: a noisy, slow signal, and its classifier must first be
# warmed up on random patches. V2 and Uni-AdaFocus pass the classifier's gradient to the policy
# directly. The figure (drawn by `make figures` from `make family`'s run) shows validation accuracy
# along training for V1's three stages next to the end-to-end models.

# %%
from pathlib import Path

curves = Path("../figures/family_learning_curves.png")
if curves.exists():
    display(Markdown(f"![V1 against the end-to-end family]({curves})"))
else:
    print("figures/family_learning_curves.png not found: `make family` draws it")

# %% [markdown]
# ## Why a temporal shift
#
# A network that treats frames alone and pools over time (max or mean) sees the same *set* of
# frames whether the clip plays forwards or backwards, so it cannot tell the two directions apart.
# `reversal_gap` measures it: how much the time-pooled glance features change when the clip is
# reversed. Zero for the shift-free model, whatever its weights; above zero with the shift.

# %%
from adafocus.data.synthetic import load_split
from adafocus.family import reversal_gap
from adafocus.notebook import train_model

clip = load_split(motion_cfg.data, "test", progress=False)[0]["video"][None]  # (1, T, C, H, W)
gaps = {m: reversal_gap(train_model(m, motion_cfg, quiet=True).model, clip)
        for m in ("uni_adafocus_tsn", "uni_adafocus_tsm")}
print({m: f"{g:.2e}" for m, g in gaps.items()})
assert gaps["uni_adafocus_tsn"] < 1e-5 < gaps["uni_adafocus_tsm"]

# %% [markdown]
# ## Exercises
#
# **Exercise 1: what does the shift cost?** Compare the MACs per video of `uni_adafocus_tsm` and
# `uni_adafocus_tsn` in the table. What does the temporal shift cost in arithmetic, and why?

# %% jupyter={"source_hidden": true}
# Solution
shift_mmacs = by.loc["uni_adafocus_tsm", "mmacs"] - by.loc["uni_adafocus_tsn", "mmacs"]
print(f"the shift adds {shift_mmacs:.6f} MMACs per video: it moves channels between frames, it multiplies nothing")
assert abs(shift_mmacs) < 1e-6

# %% [markdown]
# **Exercise 2: one box per clip.** Run the TSM model on one motion clip and check that every chosen
# frame is cropped at the same box, and that it chose `K` distinct frames.

# %% jupyter={"source_hidden": true}
# Solution
import torch

tsm = train_model("uni_adafocus_tsm", motion_cfg, quiet=True).model.eval()
with torch.no_grad():
    out = tsm(clip)
boxes, frames = out.boxes[0], out.frame_idx[0]  # (K, 4), (K,)
print("frames", frames.tolist(), "box", [round(v, 1) for v in boxes[0].tolist()])
assert torch.allclose(boxes, boxes[:1].expand_as(boxes)) and len(set(frames.tolist())) == motion_cfg.model.num_focus

# %% [markdown]
# **Exercise 3: V1's choices.** Run V1 on one digits clip. Which grid cells did it choose for its `K`
# patches, and do the patches' boxes sit exactly on the grid's candidate positions?

# %% jupyter={"source_hidden": true}
# Solution
from adafocus.models.adafocus_v1 import grid_corners

v1 = train_model("adafocus_v1", cfg, quiet=True).model.eval()
with torch.no_grad():
    out = v1(splits["test"][0]["video"][None])
corners = grid_corners(v1.v1.grid, cfg.data.frame_size, cfg.model.patch_size).tolist()
print(f"{v1.v1.grid}x{v1.v1.grid} grid, corners {corners}; boxes", out.boxes[0].round().int().tolist())
assert all(int(v) in corners for v in out.boxes[0, :, :2].flatten())
