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
# # 01 · The data: a video benchmark whose redundancy you can see
#
# Video recognition wastes computation in two ways that AdaFocus attacks:
#
# - **spatial redundancy**: the thing that tells you the class covers a small part of each frame;
#   the rest is background that a network processes at full price;
# - **temporal redundancy**: only some frames show it well; the others are blurred, occluded or
#   empty and add nothing.
#
# Real datasets have both, but nobody knows *where* exactly. This workbench's default data is a
# synthetic benchmark where we do know: every clip shows one small handwritten digit (the label)
# moving along a curved path over a cluttered photo, visible only in some frames. Each clip comes
# with its **ground truth**: the digit's box in every frame and a mask of the frames where it can be
# seen. With it we can measure redundancy, score a policy's boxes and frames, and build an
# *oracle* that crops exactly the right patch at exactly the right time.

# %% tags=["parameters"]
FAST = True  # a handful of clips, seconds. False: statistics over the whole (cached) validation split

# %%
# %matplotlib inline
import matplotlib.pyplot as plt

from adafocus.config import get_config
from adafocus.data import generate_clips, load_split, redundancy_summary
from adafocus.data.preview import filmstrip_figure, knob_figure

small = get_config("small")  # this notebook shows the small preset's data in both modes
cfg = small.data  # 16 frames of 64x64 RGB, 10 classes
clips = generate_clips(cfg, "val", range(32), progress=False) if FAST else load_split(cfg, "val").clips
print(f"{len(clips)} clips, videos {tuple(clips.videos.shape)} uint8 (N, T, C, H, W)")
print(f"boxes {tuple(clips.boxes.shape)} as (x0, y0, x1, y1) pixels, mask {tuple(clips.mask.shape)}, "
      f"labels {clips.labels[:8].tolist()} ...")

# %% [markdown]
# ## A filmstrip with the ground truth
#
# Rows are clips, columns are frames. The box is **solid green** where the digit is visible (an
# *informative* frame) and **dashed orange** where it is hidden: absent, covered by a textured
# occluder, or faded to a ghost. The box is drawn in every frame: it is the digit's true position
# even when you cannot see it. The other glyphs are **distractors**: digits cut into quadrants,
# shuffled and rotated, so they look like strokes but never like a digit of any class.

# %%
filmstrip_figure(clips, [0, 1, 2, 3])

# %% [markdown]
# ## The temporal mask
#
# Each row below is one clip, each column one frame; bright cells are informative frames. The digit
# is visible in `round(informative_fraction * T)` frames of every clip (half of them with the default
# knob), in one to three runs, or four when a run wraps around the clip's end (the cell checks both).
# A network that looks at frames uniformly wastes half of its looks.

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.imshow(clips.mask[:24].numpy(), cmap="Greens", aspect="auto", interpolation="nearest")
ax.set(xlabel="frame t", ylabel="clip", title="informative frames (mask)")
plt.show()
runs = (clips.mask[:, 1:] & ~clips.mask[:, :-1]).sum(1) + clips.mask[:, 0]  # (N,) runs of visible frames per clip
assert (clips.mask.sum(1) == round(cfg.informative_fraction * cfg.num_frames)).all()
assert 1 <= runs.min() and runs.max() <= 4  # one to three runs, one more when a run wraps around

# %% [markdown]
# The box moves smoothly: here is one clip's box center over time, with the informative frames
# marked. Smooth motion is what lets a spatial policy predict where to look next.

# %%
from adafocus.models.patches import box_centers

center = box_centers(clips.boxes[0])  # (T, 2) x, y pixels
fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.plot(center[:, 0], center[:, 1], "-", color="0.6")
shown = clips.mask[0]
ax.scatter(center[shown, 0], center[shown, 1], c="green", label="informative")
ax.scatter(center[~shown, 0], center[~shown, 1], c="orange", label="hidden")
ax.set(xlim=(0, cfg.frame_size), ylim=(cfg.frame_size, 0), title="box center, clip 0", aspect="equal")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## The knobs
#
# `DataConfig` controls how much redundancy there is. Each figure below renders *the same clip*
# (same seed) with one knob changed.
#
# **`object_scale`**: the digit's side as a fraction of the frame side. Smaller objects mean more
# spatial redundancy, and a harder job for a cheap low-resolution glance.

# %%
knob_figure(cfg, "object_scale", [(0.12, 0.12), (0.2, 0.26), (0.4, 0.4)], index=1, max_frames=6)

# %% [markdown]
# **`informative_fraction`**: the share of frames in which the digit is visible. Fewer
# informative frames mean more temporal redundancy, and make the choice of frames matter.

# %%
knob_figure(cfg, "informative_fraction", [0.25, 0.5, 1.0], index=1, max_frames=6)

# %% [markdown]
# **`clutter`**: from a plain dark background (0) to a textured photo with noise and up to
# six distractors (1).

# %%
knob_figure(cfg, "clutter", [0.0, 0.6, 1.0], index=1, max_frames=6)

# %% [markdown]
# ## Redundancy in three numbers
#
# From the ground truth alone: the fraction of a frame's pixels inside the digit's box (spatial)
# and the fraction of frames where the digit is visible (temporal). Their product is the share of
# all the pixels of a clip that carry the label.

# %%
import dataclasses
import pandas as pd

rows = {}
for scale in [(0.12, 0.12), (0.2, 0.26), (0.4, 0.4)]:
    c = generate_clips(dataclasses.replace(cfg, object_scale=scale), "val", range(16), progress=False)
    rows[f"object_scale={scale}"] = redundancy_summary(c)
rows["this notebook's clips"] = redundancy_summary(clips)
pd.DataFrame(rows).T.round(3)

# %%
from IPython.display import Markdown

share, side = redundancy_summary(clips), float((clips.boxes[..., 2] - clips.boxes[..., 0]).mean())
g = small.model.glance_size
Markdown(f"With the default knobs the digit's box covers **{share['box_fraction']:.1%}** of a frame and the digit is "
         f"visible in **{share['informative_fraction']:.0%}** of the frames: only **{share['useful_fraction']:.1%}** "
         f"of the pixels carry the label. That is the gap AdaFocus tries to close. Why not just shrink the frames? "
         f"The glance sees them at {g}x{g}, where a {side:.0f}-pixel digit becomes {side * g / cfg.frame_size:.0f} "
         f"pixels, and at 16x16 only {side * 16 / cfg.frame_size:.0f}: its position survives, its identity fades.")

# %% [markdown]
# The same frame at the resolutions a cheap network could afford:

# %%
import torch.nn.functional as F

t = int(clips.mask[0].float().argmax())  # the first informative frame of clip 0
frame = clips.videos[0, t:t + 1].float() / 255  # (1, C, H, W)
views = [frame, F.interpolate(frame, size=g, mode="area"), F.interpolate(frame, size=16, mode="area")]
fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
for ax, img, title in zip(axes, views, [f"{cfg.frame_size}x{cfg.frame_size}", f"{g}x{g} (the glance)", "16x16"]):
    ax.imshow(img[0].permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set(title=title, xticks=[], yticks=[])
plt.show()

# %% [markdown]
# ## Exercises
#
# **Exercise 1: the oracle's view.** A perfect policy would crop a small patch around the box, and
# only in informative frames. Crop a 24x24 patch centered on the box of every informative frame of
# clip 2 and show them side by side. Hint: `clips.boxes[2, t]` and `clips.mask[2]`; pad the frame
# first so that crops near the border stay 24x24.

# %% jupyter={"source_hidden": true}
# Solution
P = 24
video = F.pad(clips.videos[2], (P // 2,) * 4)  # (T, C, H + P, W + P)
frames, crops = clips.mask[2].nonzero().flatten().tolist(), []
for t in frames:
    x0, y0, x1, y1 = clips.boxes[2, t].tolist()
    cx, cy = int((x0 + x1) / 2) + P // 2, int((y0 + y1) / 2) + P // 2
    crops.append(video[t, :, cy - P // 2: cy + P // 2, cx - P // 2: cx + P // 2])
fig, axes = plt.subplots(1, len(crops), figsize=(1.2 * len(crops), 1.5), squeeze=False)
for ax, t, crop in zip(axes[0], frames, crops):
    ax.imshow(crop.permute(1, 2, 0).numpy()); ax.set(title=f"t={t}", xticks=[], yticks=[])
fig.suptitle(f"oracle patches, class {int(clips.labels[2])}", fontsize=9, y=1.12)
plt.show()
assert len(crops) == int(clips.mask[2].sum()) and all(c.shape[1:] == (P, P) for c in crops)

# %% [markdown]
# **Exercise 2: a harder benchmark.** Make the digit smaller (`object_scale=(0.12, 0.15)`), visible
# in a quarter of the frames and the clutter maximal. Show two clips and compute the share of
# useful pixels. How many times less than with the defaults?

# %% jupyter={"source_hidden": true}
# Solution
hard = dataclasses.replace(cfg, object_scale=(0.12, 0.15), informative_fraction=0.25, clutter=1.0)
hard_clips = generate_clips(hard, "val", range(16), progress=False)
ratio = redundancy_summary(clips)["useful_fraction"] / redundancy_summary(hard_clips)["useful_fraction"]
print(f"useful pixels: {redundancy_summary(hard_clips)['useful_fraction']:.4f} ({ratio:.1f}x fewer)")
display(filmstrip_figure(hard_clips, [0, 1], max_frames=8))
assert 3 < ratio < 12  # about (0.23 / 0.135)² x (0.5 / 0.25) = 5.8: smaller object, half the informative frames

# %% [markdown]
# **Exercise 3: what does a uniform sampler miss?** A model that looks at `K = 4` evenly spaced
# frames (`t = 0, 5, 10, 15`) sees the digit in how many of them, on average? And in how many
# clips does it never see the digit at all?

# %% jupyter={"source_hidden": true}
# Solution
import torch

uniform = torch.linspace(0, cfg.num_frames - 1, 4).round().long()  # frames 0, 5, 10, 15
seen = clips.mask[:, uniform].sum(dim=1)  # (N,) informative frames among the 4
print(f"frames {uniform.tolist()}: the digit is visible in {seen.float().mean():.2f} of 4 on average")
print(f"{(seen == 0).float().mean():.0%} of the clips never show the digit to this sampler")
assert abs(seen.float().mean() - 4 * clips.mask.float().mean()) < 0.5  # about 4 x the informative share

# %% [markdown]
# A temporal policy that reads the glance can do better: it is trained to put its `K` frames
# where the mask is on. The next notebooks build one.
