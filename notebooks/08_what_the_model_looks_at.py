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
# # 08 · What the model looks at: attributions
#
# The policies tell us where the model *decided* to look. Attribution methods ask a different
# question: which pixels, patches and frames did the **classifier's answer** depend on?
#
# One subtlety first. The policies' choices (which `K` frames, where the boxes go) are integer
# indices and detached boxes: no gradient flows through them, so no attribution method can say how
# a pixel moved the policy. `adafocus.analysis.attributions` therefore explains **the classifier
# given the chosen patches**: the model runs once to fix its frames and boxes (`fix_policy`), then
# the glance, focus and classifier re-run on perturbed inputs with those choices frozen. A pixel
# outside every chosen box can still matter through the glance network, which sees whole frames.
#
# Methods (captum): **integrated gradients** (pixels; the attributions add up to the change of the
# logit from a black video), **occlusion** over time (blank a whole frame) and over space (slide a
# grey square), **Grad-CAM** on the focus network's patches and on the glance network's frames, and
# the **pointing game**: how often a map's maximum falls inside the true box.

# %% tags=["parameters"]
FAST = True  # True: the fast preset, a toy schedule (seconds; what CI runs). False: the small preset's models

# %%
# %matplotlib inline
from adafocus.notebook import notebook_setup

PRESET, cfg, splits = notebook_setup(FAST)  # data generated once, then cached under $ADAFOCUS_CACHE

# %%
import matplotlib.pyplot as plt
import torch

from adafocus.notebook import train_model
from adafocus.viz.filmstrips import attribution_filmstrip

model = train_model("uni_adafocus", cfg, splits).model  # label-free; cached after the first run
S = cfg.data.frame_size

# %% [markdown]
# A batch of test clips, and the model's choices on them, fixed once and reused by every method.

# %%
from adafocus.analysis.attributions import fix_policy

n = 8
clips = splits["test"].clips
video, labels = clips.videos[:n].float() / 255, clips.labels[:n]  # (n, T, C, H, W)
gt_boxes, mask = clips.boxes[:n], clips.mask[:n]
choice = fix_policy(model, video)
print("predicted:", choice.prediction.tolist(), " true:", labels.tolist())
print("chosen frames of clip 0:", choice.frame_idx[0].tolist())

# %% [markdown]
# ## Integrated gradients
#
# Pixel attributions for the predicted class, integrated along a straight path from a black video.
# *Completeness* is a sanity check: per clip, the attributions sum to `f(video) - f(black)`, up to
# the integration error `delta`. The filmstrip shows the frames (true box green, chosen patches
# magenta) above the magnitude of the attributions, with the per-frame total as bars.

# %%
from adafocus.analysis.attributions import integrated_gradients, pixel_maps

ig, delta = integrated_gradients(model, video, choice=choice, return_delta=True)  # (n, T, C, H, W)
print(f"completeness error |delta|: at most {delta.abs().max():.2e} (logit units)")
ig_maps = pixel_maps(ig)  # (n, T, H, W) |attribution| summed over channels
attribution_filmstrip(video[0], ig_maps[0], gt_boxes[0], mask[0], choice.boxes[0], choice.frame_idx[0],
                      title="integrated gradients, clip 0 (predicted class)")
plt.show()

# %% [markdown]
# ## Occlusion over time: which frames matter?
#
# Blank one whole frame at a time and record the drop of the predicted class's logit. Frames the
# classifier relies on give large drops; a frame that is neither glanced at nor focused on gives
# exactly zero.

# %%
from adafocus.analysis.attributions import frame_scores, occlusion_time

drops = frame_scores(occlusion_time(model, video, choice=choice), "mean")  # (n, T) logit drop per frame
chosen = torch.zeros_like(mask).scatter_(1, choice.frame_idx, True)  # (n, T) frames with a patch
for name, frames in [("object visible", mask), ("object hidden", ~mask), ("focused (patch)", chosen),
                     ("glance only", ~chosen)]:
    print(f"{name:16s}: mean drop {drops[frames].mean():+.3f}")

# %% [markdown]
# ## Occlusion over space
#
# A grey square (a quarter of the frame's side) slides over every frame; each pixel gets the mean
# drop of the windows covering it. Slower than gradients (one forward pass per window position), so
# two clips.

# %%
from adafocus.analysis.attributions import occlusion_space

few = fix_policy(model, video[:2])
occ = occlusion_space(model, video[:2], choice=few, window=S // 4, stride=S // 8, fill=0.5)
occ_maps = occ.mean(dim=2)  # (2, T, H, W): the drop, channels averaged (positive: the window hurt the logit)
attribution_filmstrip(video[1], occ_maps[1].clamp(min=0), gt_boxes[1], mask[1], few.boxes[1], few.frame_idx[1],
                      title="occlusion over space, clip 1 (logit drop)")
plt.show()

# %% [markdown]
# ## Grad-CAM and the pointing game
#
# Grad-CAM weighs a layer's feature maps by the gradient of the class logit. At the CPU presets the
# networks' *last* maps are tiny (1x1 to 4x4), so we read an earlier stage: the focus network's
# second stage and the glance network's last block at stride 4. Focus maps live on the `P x P`
# patches; `patch_maps_to_frames` pastes them back into the frame through the boxes. The pointing
# game scores the maps on frames where the object is visible; random maps give the reference.

# %%
from adafocus.analysis.attributions import gradcam_focus, gradcam_glance, patch_maps_to_frames, pointing_game
from adafocus.analysis.policy_metrics import gather_frames

glance_maps = gradcam_glance(model, video, choice=choice, layer=model.glance.features[3])  # (n, T_g, H, W)
focus_maps = patch_maps_to_frames(gradcam_focus(model, video, choice=choice, layer=model.focus.stages[1]),
                                  choice.boxes, S)  # (n, K, H, W)
for name, maps, idx in [("glance", glance_maps, model.glance_idx.expand(n, -1)), ("focus", focus_maps,
                                                                                 choice.frame_idx)]:
    visible = gather_frames(mask, idx)  # only frames where the object can be seen
    boxes = gather_frames(gt_boxes, idx)[visible]
    hit = pointing_game(maps[visible], boxes)
    chance = pointing_game(torch.rand_like(maps[visible]), boxes)
    print(f"{name:6s} Grad-CAM: pointing game {hit:.0%} (random maps {chance:.0%}, {int(visible.sum())} maps)")

# %% [markdown]
# With `FAST = True` the model has trained for seconds on tiny frames, so expect weak, noisy maps
# and pointing-game scores close to the random reference. With `FAST = False` the small preset's
# label-free model is explained; compare its maps with the true boxes (which it never saw).
#
# ## Exercises
#
# **Exercise 1: how much of the evidence is inside the patches?** For integrated gradients, the
# share of the total `|attribution|` of the chosen frames that lies inside the chosen boxes, for the
# final exit (`head="final"`) and for the focus-only head (`head="focus"`). Which head looks
# outside its patches, and through which network?

# %% jupyter={"source_hidden": true}
# Solution
ys, xs = torch.arange(S).view(1, 1, S, 1) + 0.5, torch.arange(S).view(1, 1, 1, S) + 0.5  # pixel centers
b = choice.boxes[..., None, None]  # (n, K, 4, 1, 1)
inside = (xs >= b[:, :, 0]) & (xs <= b[:, :, 2]) & (ys >= b[:, :, 1]) & (ys <= b[:, :, 3])  # (n, K, H, W)
shares = {}
for head in ("final", "focus"):
    maps = pixel_maps(integrated_gradients(model, video, choice=choice, head=head))  # (n, T, H, W)
    at_chosen = gather_frames(maps, choice.frame_idx)  # (n, K, H, W)
    share = (at_chosen * inside).sum() / at_chosen.sum().clamp(min=1e-12)
    shares[head] = float(share)
    print(f"head={head!r}: {share:.0%} of the chosen frames' attribution lies inside the patches")
assert shares["focus"] > 0.9 and shares["focus"] >= shares["final"] - 0.01  # the focus head sees only patches

# %% [markdown]
# **Exercise 2: the pointing game for occlusion.** Score the spatial occlusion maps of the two clips
# with the pointing game on their visible frames, against random maps.

# %% jupyter={"source_hidden": true}
# Solution
vis = mask[:2]
hit = pointing_game(occ_maps[vis], gt_boxes[:2][vis])
chance = pointing_game(torch.rand_like(occ_maps[vis]), gt_boxes[:2][vis])
varies = occ_maps[vis].flatten(1).std(1) > 0  # a flat map (all zero: a frame the model never looked at) is a miss
print(f"occlusion maps point into the true box in {hit:.0%} of {int(vis.sum())} frames (random maps {chance:.0%}); "
      f"{int((~varies).sum())} maps are flat")
assert hit <= varies.float().mean() + 1e-6  # only maps that vary can point (FAST: too few frames to beat chance)

# %% [markdown]
# **Exercise 3: why this class and not the true one?** Pick a misclassified clip (if any) and
# compare the integrated-gradients frame totals for the predicted class and for the true class.

# %% jupyter={"source_hidden": true}
# Solution
wrong = (choice.prediction != labels).nonzero().flatten()
i = int(wrong[0]) if len(wrong) else 0
print(f"clip {i} is {'misclassified' if len(wrong) else 'classified correctly (no mistake among these clips)'}")
one, pick = video[i:i + 1], fix_policy(model, video[i:i + 1])
for name, target in [("predicted", int(pick.prediction)), ("true", int(labels[i]))]:
    per_frame = integrated_gradients(model, one, target, choice=pick).sum(dim=(2, 3, 4))[0]  # (T,)
    print(f"clip {i}, {name} class {target}: per-frame attribution {[round(v, 2) for v in per_frame.tolist()]}")
    assert per_frame.shape == (cfg.data.num_frames,) and torch.isfinite(per_frame).all()
