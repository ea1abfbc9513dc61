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
# # 05 · Patch trajectories
#
# AdaFocus never looks at a whole frame with its expensive network. For every frame the **spatial
# policy** proposes a box `(x0, y0, x1, y1)`; the **temporal policy** picks `K` frames, and only at
# those frames is the box cropped and resampled to a `P x P` patch for the focus network.
#
# Follow the box from frame to frame and you get a **patch trajectory**: a path through space *and*
# time. A good trajectory stays on the object while it moves, grows and shrinks, and spends its `K`
# patches on frames where the object can actually be seen.
#
# The synthetic benchmark knows the ideal trajectory exactly: the object's tight box in every frame
# and the mask of frames where it is visible. This notebook explores that ground truth first, then
# a trained model's trajectories next to it: in an explorer, as plots, as an interactive figure
# and as an animation.

# %% tags=["parameters"]
FAST = True  # True: the fast preset, a toy schedule (seconds; what CI runs). False: the small preset's models

# %%
# %matplotlib inline
from adafocus.notebook import notebook_setup

PRESET, cfg, splits = notebook_setup(FAST)  # data generated once, then cached under $ADAFOCUS_CACHE

# %%
import matplotlib.pyplot as plt
import torch

from adafocus.viz.explorers import clip_explorer, to_rgb

ds = splits["test"]
print(f"{len(ds)} test clips of {cfg.data.num_frames} frames at {cfg.data.frame_size}x{cfg.data.frame_size} px, "
      f"{cfg.data.num_classes} classes")

# %% [markdown]
# ## The ideal trajectory in numbers
#
# How much of a frame does the object need, how fast does it move, and how often is it visible?
# These three numbers are the spatial, the motion and the temporal redundancy a policy can exploit.

# %%
boxes, mask = ds.clips.boxes, ds.clips.mask  # (N, T, 4) pixels, (N, T) visible
sides = boxes[..., 2:] - boxes[..., :2]  # (N, T, 2) width, height
center = (boxes[..., :2] + boxes[..., 2:]) / 2  # (N, T, 2) x, y
step = (center[:, 1:] - center[:, :-1]).norm(dim=-1)  # (N, T - 1) pixels per frame
area = (sides.prod(-1) / cfg.data.frame_size**2).mean()
print(f"box: {sides.mean():.1f} px on average, {100 * area:.0f}% of the frame's area")
print(f"center moves {step.mean():.2f} px per frame")
print(f"object visible in {100 * mask.float().mean():.0f}% of the frames")

# %% [markdown]
# Every picture in this notebook draws boxes in the workbench's one colour language
# (`adafocus.viz.colors`), printed here from the palette itself; each explorer, plot and animation
# also carries its own legend.

# %%
from IPython.display import Markdown

from adafocus.viz import colors

Markdown("**Colour key:** " + colors.color_key() + ". Every box has a thin black outline, so it stays "
         "visible on a digit of its own colour.")

# %% [markdown]
# One clip's trajectory on its first frame: the box center frame by frame, a filled dot where the
# object is visible, a hollow one where it is hidden, faded or absent (a patch spent there is wasted).

# %%
i = 0
visible = mask[i].numpy()
cx, cy = center[i, :, 0].numpy() - 0.5, center[i, :, 1].numpy() - 0.5  # pixel i is centered at i
fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.imshow(to_rgb(ds.clips.videos[i, 0]))
ax.plot(cx, cy, color=colors.TRUTH.hex, lw=1, path_effects=colors.halo_effects(1))
ax.scatter(cx[visible], cy[visible], color=colors.TRUTH.hex, edgecolor="black", zorder=3, label="object visible")
ax.scatter(cx[~visible], cy[~visible], facecolor="none", edgecolor=colors.TRUTH.hex, linewidth=1.5, zorder=3,
           label="object hidden")
ax.set_title(f"clip {i}, label {int(ds.clips.labels[i])}")
ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, -0.2), ncol=2, facecolor="#444444", labelcolor="white")
ax.axis("off")
plt.show()

# %% [markdown]
# ## Explore
#
# - **clip**: which test clip; **frame** (or ▶ play): which frame.
# - The big frame shows the ground-truth box (solid where the object is visible, dashed where it is
#   hidden); the legend under the caption lists exactly the boxes this clip draws.
# - The strip shows every frame of the clip with its box: the top bar is lit where the object is
#   visible, the current frame has a light border. With a model, a bar under a thumbnail marks a
#   frame the temporal policy chose, the solid box is the patch it cropped there and the dotted box
#   is the spatial policy's box between chosen frames (colours: the key above).

# %%
explorer = clip_explorer(ds)
explorer

# %% [markdown]
# ## A trained model's trajectories
#
# Now the same explorer with a trained Uni-AdaFocus (cached after the first run; with `FAST = True`
# a toy trained for seconds, with `FAST = False` the small preset's model from `make demo`). It is
# label-free (the printed supervision is `none`): its policy never saw a box or a frame mask. The
# policy proposes a box at each of the `T_g` glance frames; between them the actions are
# interpolated in time; at the `K` chosen frames the box becomes a real patch.

# %%
from adafocus.notebook import train_model

model = train_model("uni_adafocus", cfg, splits).model  # eval mode
model_explorer = clip_explorer(ds, model=model)
model_explorer

# %% [markdown]
# The trajectory as a plot: the box center's `x` and `y` against time, the policy's (a dotted line,
# the focused frames as squares) beside the truth (hollow dots where the object is hidden); the
# legend under the plot names each mark. `clip_track` runs the model on one clip and turns its
# output into one box per frame (`policy_track`).

# %%
from adafocus.notebook import clip_track
from adafocus.viz.trajectories import trajectory_figure

item = ds[3]
out, track = clip_track(model, item)  # the model's output and its box in every frame (T, 4)
trajectory_figure(track, item["boxes"], item["mask"], out.frame_idx[0], cfg.data.frame_size,
                  title=f"test clip 3: label {int(item['label'])}, predicted {int(out.logits.argmax())}")
plt.show()

# %% [markdown]
# The same clip as an interactive figure (plotly): drag the slider or press play; hover for
# coordinates. The true box is dashed where the object is hidden; a `*` on the slider marks a
# focused frame.

# %%
from adafocus.viz.trajectories import trajectory_plotly

trajectory_plotly(item["video"], track, item["boxes"], item["mask"], out.frame_idx[0],
                  title="Patch trajectory, test clip 3")

# %% [markdown]
# And as an animation: `save_trajectory_video` writes a GIF (or an mp4) with the boxes drawn in and,
# under every frame, the frame counter and the legend. It goes to the cache folder, not the repository.

# %%
from IPython.display import Image

from adafocus.paths import cache_dir
from adafocus.viz.trajectories import save_trajectory_video

gif = save_trajectory_video(item["video"], track, cache_dir("notebooks") / "trajectory.gif", fps=3,
                            gt_boxes=item["boxes"], gt_mask=item["mask"], frame_idx=out.frame_idx[0])
Image(filename=str(gif))

# %% [markdown]
# ## Trajectories in numbers
#
# Over the test clips, at the glance frames: how far the policy's box center is from the truth,
# and how far it moves between consecutive glance frames compared with the object. A policy that
# ignores the video sits still (0 px per step) at a large distance.

# %%
from IPython.display import Markdown

from adafocus.analysis.policy_metrics import trajectory_smoothness
from adafocus.models.patches import box_centers

n = min(128, len(ds))
with torch.no_grad():
    out_all = model(ds.clips.videos[:n].float() / 255)
policy_boxes, true_boxes = out_all.glance_boxes, ds.clips.boxes[:n, model.glance_idx]  # (n, T_g, 4)
error = (box_centers(policy_boxes) - box_centers(true_boxes)).norm(dim=-1)  # (n, T_g) pixels
Markdown(f"Center error at the glance frames: **{error.mean():.1f} px** (frame side {cfg.data.frame_size} px); "
         f"movement per glance step: policy **{trajectory_smoothness(policy_boxes).mean():.2f} px**, object "
         f"**{trajectory_smoothness(true_boxes).mean():.2f} px**.")

# %% [markdown]
# ## Side by side with a baseline
#
# `compare_explorer` shows the same clip and frame for several models: here Uni-AdaFocus and the
# `random_patch` baseline (the same network with random boxes instead of the spatial policy). Both
# are label-free; the explorer's titles say so.

# %%
from adafocus.viz.explorers import compare_explorer

random_patch = train_model("random_patch", cfg, splits).model
compare_explorer(ds, {"Uni-AdaFocus (label-free)": model, "random patch (label-free)": random_patch})

# %% [markdown]
# ## Exercises
#
# **Exercise 1: does the policy pick frames that show the object?** The object is visible in only
# some frames of each clip. For each of the `n` test clips above, count how many of the model's `K`
# chosen frames show it (`out_all.frame_idx`) and how many of `K` evenly spaced frames do. On how
# many clips does the model see the object more often than the even grid, as often, or less often?
# Then look at the clip where the model gains the most (the first one, if several tie).

# %% jupyter={"source_hidden": true}
# Solution
from adafocus.models.sampling import uniform_indices

K, visible = cfg.model.num_focus, mask[:n]  # visible: (n, T)
grid = uniform_indices(cfg.data.num_frames, K)  # (K,) evenly spaced frames
model_hits = visible.gather(1, out_all.frame_idx).sum(1)  # (n,) chosen frames that show the object
grid_hits = visible[:, grid].sum(1)  # (n,)
gain = model_hits - grid_hits
print(f"{n} clips: the object in {model_hits.float().mean():.2f} of the model's {K} frames, in "
      f"{grid_hits.float().mean():.2f} of {K} evenly spaced ones; the model sees it more often on "
      f"{int((gain > 0).sum())} clips, as often on {int((gain == 0).sum())}, less often on {int((gain < 0).sum())}")
j = int(gain.argmax())
print(f"clip {j}: object visible in frames {visible[j].nonzero().flatten().tolist()}; even grid {grid.tolist()} "
      f"({int(grid_hits[j])} show it), model {sorted(out_all.frame_idx[j].tolist())} ({int(model_hits[j])} show it)")
assert 0 <= int(model_hits.min()) and int(model_hits.max()) <= K and gain[j] == gain.max()

# %% [markdown]
# **Exercise 2: why resample every box to `P x P`?** Uni-AdaFocus lets the box side vary in
# `[box_min, box_max]` but always resamples it to `P x P`. For the model's chosen boxes, compute
# the scale at which the focus network sees the frame (`P / box side`) and the focus cost per patch.
# Would the cost be fixed if the network ran on the box at native resolution?

# %% jupyter={"source_hidden": true}
# Solution
from adafocus.flops import model_cost

chosen_sides = (out_all.boxes[..., 2:] - out_all.boxes[..., :2]).mean(-1)  # (n, K) pixels
zoom = cfg.model.patch_size / chosen_sides
per_patch = model_cost("uni_adafocus", cfg)["components"]["focus_per_patch"] * 1e3
print(f"box sides {chosen_sides.min():.1f}..{chosen_sides.max():.1f} px "
      f"-> zoom x{zoom.min():.2f}..x{zoom.max():.2f}")
print(f"every patch costs {per_patch:.3f} MMACs; at native resolution the cost would grow with the box area")
P, lo, hi = cfg.model.patch_size, cfg.model.box_min, cfg.model.box_max
assert P / hi - 1e-3 <= zoom.min() and zoom.max() <= P / lo + 1e-3  # sides stay in [box_min, box_max]

# %% [markdown]
# **Exercise 3: the best-tracked clip.** Rank the test clips by the policy's mean center error at
# the glance frames (`error` above) and plot the trajectory of the best one.

# %% jupyter={"source_hidden": true}
# Solution
best = int(error.mean(1).argmin())
b = ds[best]
o, best_track = clip_track(model, b)
trajectory_figure(best_track, b["boxes"], b["mask"], o.frame_idx[0], cfg.data.frame_size,
                  title=f"best-tracked clip {best}: mean center error {error[best].mean():.1f} px")
plt.show()
assert error[best].mean() <= error.mean()  # the best clip is tracked at least as well as the average
