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
# # 04 · Training Uni-AdaFocus from the label alone
#
# The difficulty: the model's decisions are not differentiable. The temporal policy's output becomes
# integer frame indices, and the real patches are cropped with **detached** boxes, so the
# classifier's loss cannot reach either policy. Uni-AdaFocus (Wang et al., TPAMI 2024) trains them
# from the video's class label alone, through differentiable stand-ins
# (`adafocus/models/surrogates.py`, `adafocus/losses.py`; docs/design.md, "Training signal"):
#
# - **spatial surrogate**: the policy's *live* box crops the *detached* glance feature map by bilinear
#   interpolation; the crop is pooled and classified by a linear head. Its cross-entropy is the only
#   signal the spatial policy gets: a box over the object crops features that name the class;
# - **scale regulariser**: `mean((s - 1)²)` over the scale actions pulls boxes towards the largest
#   size, so the policy starts wide and narrows where the class evidence is;
# - **temporal surrogate**: Monte Carlo draws remove some glance frames according to `w`; the
#   glance's per-frame logits of the frames kept are averaged with their weights `w`; the
#   cross-entropy of that average moves `w` towards frames whose logits name the class;
# - **auxiliary terms**: the cross-entropy of every exit, of each glance frame and of each patch;
# - **two branches**: every term is averaged over the *policy* branch and a *random-patch* branch
#   (same glance and frames, patches at random places) that keeps the focus network robust while the
#   policy is young.
#
# Training is **one stage**, end to end, after a shared pretraining of the backbones (the analogue of
# the paper's ImageNet weights). This notebook shows the signal, why it once taught nothing here (the
# glance was blind), what fixed it, the three recipes side by side, and the policy learning to look.

# %% tags=["parameters"]
FAST = True  # True: the fast preset, a toy schedule (seconds; what CI runs). False: the small preset's models

# %%
# %matplotlib inline
from adafocus.notebook import notebook_setup

PRESET, cfg, splits = notebook_setup(FAST)  # data generated once, then cached under $ADAFOCUS_CACHE

# %% [markdown]
# ## The recipes: one switch for the training signal
#
# `train.recipe` names the signal (`adafocus.config.RECIPES`); each recipe sets the same fields, so
# switching never keeps a leftover, and single fields can be overridden after it:
#
# - `paper`: the official implementation's signal, item by item (SGD with the per-part learning
#   rate multipliers, scale regulariser at weight 1);
# - `cpu` (the default): the same label-free signal with the departures CPU budgets needed (AdamW, a
#   weaker scale regulariser);
# - `hinted`: an **ablation**, never a default: the `cpu` recipe plus the synthetic ground truth in the
#   policies' losses (an L1 on the true box center, a KL towards the true informative frames), the
#   upper bound of what the surrogates could learn.

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown

from adafocus.notebook import recipes_table

display(recipes_table())
Markdown(f"This preset trains with recipe **{cfg.train.recipe!r}**: patches cropped with detached boxes "
         f"(`model.patch_grad={cfg.model.patch_grad}`), ground truth in the loss: "
         f"**{'yes (hinted)' if cfg.train.uses_ground_truth else 'none (label-free)'}**, "
         f"{cfg.train.epochs} epochs in one stage after the pretraining.")

# %% [markdown]
# ## Before the video: a pretraining that gives the networks eyes
#
# The paper starts from ImageNet weights. Nothing can be downloaded here, so `adafocus.pretrain`
# trains the glance and focus backbones on a generated **object-centric image set**: one digit over
# the benchmark's clutter per image, class labels only, handwriting of the training fold only. The
# glance sees each image at the pixel scale at which it sees video frames; the focus sees random
# crops. Trained once per geometry, cached, copied into every method. Its held-out accuracy:

# %%
from adafocus.pretrain import pretrain

_, pre_history = pretrain(cfg, progress=False)
display(pre_history[["epoch", "train_loss", "val_glance_acc", "val_acc"]].round(3).set_index("epoch"))
pre = pre_history.iloc[-1]
chance = 1 / cfg.data.num_classes
assert pre["val_glance_acc"] > chance + 0.05  # the glance learned to read the digits (FAST: a few points over chance)
Markdown(f"On held-out images the pretrained glance reads the digit **{pre['val_glance_acc']:.1%}** of the time, the "
         f"focus network **{pre['val_acc']:.1%}** (chance {chance:.0%}).")

# %% [markdown]
# ## Train the default, label-free, and watch every term
#
# `train_model` prints the supervision: `none`, the class label only. Each loss term is logged per
# epoch (`spatial` and `temporal` are the surrogates, `scale` the regulariser; each term is already
# averaged over the two branches).

# %%
from adafocus.notebook import train_model

uni = train_model("uni_adafocus", cfg, splits)
terms = [c for c in uni.history if c.startswith("train_") and c not in ("train_loss", "train_acc")]
losses = uni.history.set_index("epoch")[terms].rename(columns=lambda c: c[len("train_"):])
ax = losses.plot(marker="o", figsize=(7, 3.4), grid=True)
ax.set(xlabel="epoch", ylabel="mean loss per clip", title=f"loss terms of label-free Uni-AdaFocus ({cfg.name})")
plt.show()

# %% [markdown]
# ## Why it once learned nothing: a blind glance
#
# Both surrogates classify *glance* features. A glance that cannot tell the classes apart gives them
# nothing to follow: every box crops features that name no class, every frame's logits look alike.
# That is what happened here before: the glance started from random weights (or from a pretraining
# on the video's own true boxes, which shaped every model with ground truth) and, at its low
# resolution, stayed at chance on its own. The diagnostic trains the **glance-only** model (the
# glance and its exits, no patches) from random weights and from the image-set pretraining
# (`benchmarks/glance_diagnostic.py` measures more variants at the small preset; with
# `FAST = False` its CSV is read when `make demo` or that script wrote it).

# %%
from adafocus.notebook import glance_diagnostic

diag = glance_diagnostic(cfg, splits, FAST)
display(diag[[c for c in ("variant", "pretrained", "test_accuracy", "supervision", "source") if c in diag]])
acc = diag.groupby("pretrained")["test_accuracy"].max()
assert acc[True] > acc[False]  # pretraining gives the glance its eyes (FAST: the fast preset shows it too)
Markdown(f"Glance-only test accuracy: **{acc[False]:.1%}** from random weights, **{acc[True]:.1%}** after the "
         f"image-set pretraining (chance {chance:.0%}).")

# %% [markdown]
# The same question asked of the spatial surrogate directly (`adafocus.evaluate.spatial_signal`): its
# head's accuracy on glance crops at the **true** boxes against crops at **random** boxes of the same
# size. Equal accuracies mean the surrogate cannot tell where the object is, so it cannot teach the
# policy. We compare the default model with the same model trained without the pretraining
# (`pretrain.epochs=0`).

# %%
from adafocus.evaluate import spatial_signal

blind = train_model("uni_adafocus", cfg, splits, **{"pretrain.epochs": 0})
signal = pd.DataFrame({"pretrained glance": spatial_signal(uni.model, splits["test"]),
                       "random-init glance": spatial_signal(blind.model, splits["test"])}).T
display(signal.round(3))
margin = signal["surrogate_acc_true_boxes"] - signal["surrogate_acc_random_boxes"]
Markdown(f"True boxes beat random ones by **{100 * margin['pretrained glance']:+.0f} points** with the pretrained "
         f"glance, by **{100 * margin['random-init glance']:+.0f}** without it: the signal comes from a glance "
         "that knows what the classes look like.")

# %% [markdown]
# ## The three recipes side by side
#
# The paper's recipe and the hinted ablation at the same budget, next to the default. Box IoU is the
# chosen boxes' overlap with the truth (next to random boxes of the same size), frame recall the
# share of informative frames among the chosen ones (next to evenly spaced frames). Only `hinted`
# reads the ground truth in training; the table says so in its `supervision` column.

# %%
from adafocus.notebook import evaluation_row, supervision_table

runs = {"cpu": uni, **{r: train_model("uni_adafocus", cfg, splits, **{"train.recipe": r}) for r in ("paper", "hinted")}}
table = pd.DataFrame({r: evaluation_row(res.model, res.cfg, splits["test"]) for r, res in runs.items()}).T
table = supervision_table(runs).join(table)
columns = ["supervision", "accuracy", "box_iou", "random_box_iou", "frame_recall", "uniform_frame_recall"]
display(table[columns].round(3))
assert list(table["supervision"]) == ["none", "none", "hinted"]

# %%
best = table.drop(index="hinted")["accuracy"].idxmax()
b, h = table.loc[best], table.loc["hinted"]
Markdown(f"Label-free, the best recipe here is **{best}** at **{b['accuracy']:.1%}**; its frame recall is "
         f"{b['frame_recall']:.2f} (evenly spaced: {b['uniform_frame_recall']:.2f}), its box IoU {b['box_iou']:.3f} "
         f"(random boxes: {b['random_box_iou']:.3f}). The hinted ablation, which reads the true boxes, reaches "
         f"{h['accuracy']:.1%} with box IoU {h['box_iou']:.3f}: the gap is what the surrogates have not (yet) found.")

# %% [markdown]
# ## Watch it learn to look
#
# The trainer records, on a few fixed validation clips, the policy's box at every glance frame and
# `w` before training (epoch 0) and after every epoch (`train.record_policy`; it never changes the
# training). Rows are epochs, columns glance frames: the magenta box is the policy's, the green one the
# truth (never seen by the model; dotted where the digit is hidden); bold titles mark the informative
# frames, each titled with its `w`. A label-free policy moves from wide, central boxes and a flat `w`
# towards the object and the frames where it is visible.

# %%
from adafocus.notebook import learning_to_look, trace_summary

learning_to_look(uni, splits, clip=0)
plt.show()
trace = trace_summary(uni, splits)
display(trace.round(3).T)

# %%
first, last = trace.iloc[0], trace.iloc[-1]
assert last["w_on_informative"] > first["w_on_informative"]  # w moved towards the informative frames
Markdown(f"On the recorded clips, `w`'s mass on the informative glance frames went from "
         f"**{first['w_on_informative']:.2f}** (epoch 0) to **{last['w_on_informative']:.2f}** (their share of the "
         f"glance frames: {last['informative_share']:.2f}); the boxes' IoU with the truth from {first['box_iou']:.3f} "
         f"to {last['box_iou']:.3f}.")

# %% [markdown]
# ## Exercises
#
# **Exercise 1: the paper's optimiser.** Build the optimiser of the `paper` recipe with
# `make_optimizer` (`adafocus.fit`) and list each part's learning rate. Check the multipliers policy
# 0.2, glance 0.5, focus 1, classifier 20 (Wang et al., TPAMI 2024).

# %% jupyter={"source_hidden": true}
# Solution
from adafocus.config import get_config
from adafocus.fit import make_optimizer
from adafocus.models.registry import create_model

paper_cfg = get_config(PRESET, **{"train.recipe": "paper"})
opt, _ = make_optimizer(create_model("uni_adafocus", paper_cfg), paper_cfg.train, steps=1)
lrs = {g["name"]: g["lr"] for g in opt.param_groups}
print(type(opt).__name__, lrs)
assert {k: round(v / paper_cfg.train.lr, 3) for k, v in lrs.items()} == {"glance": 0.5, "focus": 1.0, "policy": 0.2,
                                                                          "classifier": 20.0}

# %% [markdown]
# **Exercise 2: did the boxes shrink?** The scale regulariser pulls boxes to the largest size; the
# spatial surrogate rewards boxes that crop the class evidence. From the recorded trace (`uni.trace`,
# key `glance_boxes`), the mean box side at epoch 0 and after the last epoch.

# %% jupyter={"source_hidden": true}
# Solution
side = {r["epoch"]: float((r["glance_boxes"][..., 2:] - r["glance_boxes"][..., :2]).mean()) for r in uni.trace}
print({epoch: round(s, 1) for epoch, s in side.items()}, f"(allowed: {cfg.model.box_min}..{cfg.model.box_max} px)")
assert all(cfg.model.box_min - 0.5 <= s <= cfg.model.box_max + 0.5 for s in side.values())
assert len(side) == cfg.train.epochs + 1  # epoch 0 (before training) and one record per epoch

# %% [markdown]
# **Exercise 3: a blind glance, a blind `w`.** Compare the frame recall of the default model with the
# one trained without the pretraining (`blind` above). Which one puts its `K` frames where the digit
# is?

# %% jupyter={"source_hidden": true}
# Solution
recall = {name: evaluation_row(res.model, res.cfg, splits["test"])["frame_recall"]
          for name, res in [("pretrained glance", uni), ("random-init glance", blind)]}
print({k: round(v, 3) for k, v in recall.items()}, f"evenly spaced: {table.loc['cpu', 'uniform_frame_recall']:.3f}")
assert recall["pretrained glance"] >= recall["random-init glance"] - 0.05  # (FAST: within 5 points or better)
