"""Builds notebooks/05_patch_trajectories.ipynb: ground-truth and learned patch trajectories, explored."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _nb import code, md, parameters, presets, write  # noqa: E402

NAME = "05_patch_trajectories"

CELLS = [
    md("""
    # 05 · Patch trajectories

    AdaFocus never looks at a whole frame with its expensive network. For every frame the **spatial
    policy** proposes a box `(x0, y0, x1, y1)`; the **temporal policy** picks `K` frames, and only at
    those frames is the box cropped and resampled to a `P x P` patch for the focus network.

    Follow the box from frame to frame and you get a **patch trajectory**: a path through space *and*
    time. A good trajectory stays on the object while it moves, grows and shrinks, and spends its `K`
    patches on frames where the object can actually be seen.

    The synthetic benchmark knows the ideal trajectory exactly: the object's tight box in every frame
    and the mask of frames where it is visible. This notebook explores that ground truth first, then
    a trained model's trajectories next to it: in an explorer, as plots, as an interactive figure
    and as an animation.
    """),
    parameters(),
    presets(),
    code("""
    import matplotlib.pyplot as plt
    import torch

    from adafocus.config import get_config
    from adafocus.data.synthetic import load_splits
    from adafocus.viz.explorers import clip_explorer, to_rgb

    torch.set_num_threads(1)
    cfg = get_config(PRESET, **OVERRIDES)
    splits = load_splits(cfg.data)  # cached under $ADAFOCUS_CACHE after the first run
    ds = splits["test"]
    print(f"{len(ds)} test clips of {cfg.data.num_frames} frames at {cfg.data.frame_size}x{cfg.data.frame_size} px, "
          f"{cfg.data.num_classes} classes")
    """),
    md("""
    ## The ideal trajectory in numbers

    How much of a frame does the object need, how fast does it move, and how often is it visible?
    These three numbers are the spatial, the motion and the temporal redundancy a policy can exploit.
    """),
    code("""
    boxes, mask = ds.clips.boxes, ds.clips.mask  # (N, T, 4) pixels, (N, T) visible
    sides = boxes[..., 2:] - boxes[..., :2]  # (N, T, 2) width, height
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2  # (N, T, 2) x, y
    step = (centre[:, 1:] - centre[:, :-1]).norm(dim=-1)  # (N, T - 1) pixels per frame
    area = (sides.prod(-1) / cfg.data.frame_size**2).mean()
    print(f"box: {sides.mean():.1f} px on average, {100 * area:.0f}% of the frame's area")
    print(f"centre moves {step.mean():.2f} px per frame")
    print(f"object visible in {100 * mask.float().mean():.0f}% of the frames")
    """),
    md("""
    One clip's trajectory on its first frame: the box centre frame by frame, green where the object is
    visible, grey where it is hidden, faded or absent (a patch spent there is wasted).
    """),
    code("""
    i = 0
    fig, ax = plt.subplots(figsize=(3.5, 3.5))
    ax.imshow(to_rgb(ds.clips.videos[i, 0]))
    ax.plot(centre[i, :, 0] - 0.5, centre[i, :, 1] - 0.5, color="white", lw=1)  # pixel i is centred at i
    ax.scatter(centre[i, :, 0] - 0.5, centre[i, :, 1] - 0.5, c=["lime" if m else "grey" for m in mask[i]], zorder=3)
    ax.set_title(f"clip {i}, label {int(ds.clips.labels[i])}")
    ax.axis("off")
    plt.show()
    """),
    md("""
    ## Explore

    - **clip**: which test clip; **frame** (or ▶ play): which frame.
    - The big frame shows the ground-truth box in green.
    - The strip shows every frame of the clip with its box: the top bar is green where the object is
      visible, the current frame has a white border. With a model, a magenta bar under a thumbnail marks
      a frame the temporal policy chose, the magenta box is the patch it cropped there and the amber box
      is the spatial policy's box between chosen frames.
    """),
    code("""
    explorer = clip_explorer(ds)
    explorer
    """),
    md("""
    ## A trained model's trajectories

    Now the same explorer with a trained Uni-AdaFocus (cached after the first run; with `FAST = True`
    a toy trained for seconds, with `FAST = False` the small preset's model from `make demo`). The
    policy proposes a box at each of the `T_g` glance frames; between them the actions are
    interpolated in time; at the `K` chosen frames (magenta) the box becomes a real patch.
    """),
    code("""
    from adafocus.train import train

    model = train("uni_adafocus", cfg, splits).model  # eval mode
    model_explorer = clip_explorer(ds, model=model)
    model_explorer
    """),
    md("""
    The trajectory as a plot: the box centre's `x` and `y` against time, the policy's (amber, with
    the focused frames as magenta squares) beside the truth (green; hollow where the object is hidden).
    `policy_track` turns one model output into one box per frame.
    """),
    code("""
    from adafocus.viz.trajectories import policy_track, trajectory_figure

    item = ds[3]
    with torch.no_grad():
        out = model(item["video"][None])
    track = policy_track(cfg.data.num_frames, out.glance_boxes[0], out.glance_idx, out.boxes[0], out.frame_idx[0])
    trajectory_figure(track, item["boxes"], item["mask"], out.frame_idx[0], cfg.data.frame_size,
                      title=f"test clip 3: label {int(item['label'])}, predicted {int(out.logits.argmax())}")
    plt.show()
    """),
    md("""
    The same clip as an interactive figure (plotly): drag the slider or press play; hover for
    coordinates. The true box is dashed where the object is hidden.
    """),
    code("""
    from adafocus.viz.trajectories import trajectory_plotly

    trajectory_plotly(item["video"], track, item["boxes"], item["mask"], out.frame_idx[0],
                      title="patch trajectory: policy (amber / magenta) and truth (green)")
    """),
    md("""
    And as an animation: `save_trajectory_video` writes a GIF (or an mp4) with the boxes drawn in.
    It goes to the cache folder, not the repository.
    """),
    code("""
    from IPython.display import Image

    from adafocus.paths import cache_dir
    from adafocus.viz.trajectories import save_trajectory_video

    gif = save_trajectory_video(item["video"], track, cache_dir("notebooks") / "trajectory.gif", fps=3,
                                gt_boxes=item["boxes"])
    Image(filename=str(gif))
    """),
    md("""
    ## Trajectories in numbers

    Over the test clips, at the glance frames: how far the policy's box centre is from the truth,
    and how far it moves between consecutive glance frames compared with the object. A policy that
    ignores the video sits still (0 px per step) at a large distance.
    """),
    code("""
    from adafocus.analysis.policy_metrics import box_centers, trajectory_smoothness

    n = min(128, len(ds))
    with torch.no_grad():
        out_all = model(ds.clips.videos[:n].float() / 255)
    policy_boxes, true_boxes = out_all.glance_boxes, ds.clips.boxes[:n, model.glance_idx]  # (n, T_g, 4)
    error = (box_centers(policy_boxes) - box_centers(true_boxes)).norm(dim=-1)  # (n, T_g) pixels
    print(f"centre error at the glance frames: {error.mean():.1f} px (frame side {cfg.data.frame_size} px)")
    print(f"movement per glance step: policy {trajectory_smoothness(policy_boxes).mean():.2f} px, "
          f"object {trajectory_smoothness(true_boxes).mean():.2f} px")
    """),
    md("""
    ## Side by side with a baseline

    `compare_explorer` shows the same clip and frame for several models: here Uni-AdaFocus and the
    `random_patch` baseline (the same network with random boxes instead of the spatial policy).
    """),
    code("""
    from adafocus.viz.explorers import compare_explorer

    random_patch = train("random_patch", cfg, splits).model
    compare_explorer(ds, {"Uni-AdaFocus": model, "random patch": random_patch})
    """),
    md("""
    ## Exercises

    **Exercise 1: a clip with few informative frames.** Find the test clip whose object is visible
    in the fewest frames. Which frames would evenly spaced sampling pick, how many of them show the
    object, and which did the model pick?
    """),
    code("""
    # Solution
    from adafocus.models.sampling import uniform_indices

    j = int(mask.sum(1).argmin())
    grid = uniform_indices(cfg.data.num_frames, cfg.model.num_focus)
    with torch.no_grad():
        chosen = model(ds[j]["video"][None]).frame_idx[0]
    print(f"clip {j}: object visible in frames {mask[j].nonzero().flatten().tolist()}")
    print(f"uniform frames {grid.tolist()}: {int(mask[j, grid].sum())} show it; "
          f"model's frames {chosen.tolist()}: {int(mask[j, chosen].sum())} show it")
    """),
    md("""
    **Exercise 2: why resample every box to `P x P`?** Uni-AdaFocus lets the box side vary in
    `[box_min, box_max]` but always resamples it to `P x P`. For the model's chosen boxes, compute
    the scale at which the focus network sees the frame (`P / box side`) and the focus cost per patch.
    Would the cost be fixed if the network ran on the box at native resolution?
    """),
    code("""
    # Solution
    from adafocus.flops import model_cost

    chosen_sides = (out_all.boxes[..., 2:] - out_all.boxes[..., :2]).mean(-1)  # (n, K) pixels
    zoom = cfg.model.patch_size / chosen_sides
    per_patch = model_cost("uni_adafocus", cfg)["components"]["focus_per_patch"] * 1e3
    print(f"box sides {chosen_sides.min():.1f}..{chosen_sides.max():.1f} px "
          f"-> zoom x{zoom.min():.2f}..x{zoom.max():.2f}")
    print(f"every patch costs {per_patch:.3f} MMACs; at native resolution the cost would grow with the box area")
    """),
    md("""
    **Exercise 3: the best-tracked clip.** Rank the test clips by the policy's mean centre error at
    the glance frames (`error` above) and plot the trajectory of the best one.
    """),
    code("""
    # Solution
    best = int(error.mean(1).argmin())
    b = ds[best]
    with torch.no_grad():
        o = model(b["video"][None])
    best_track = policy_track(cfg.data.num_frames, o.glance_boxes[0], o.glance_idx, o.boxes[0], o.frame_idx[0])
    trajectory_figure(best_track, b["boxes"], b["mask"], o.frame_idx[0], cfg.data.frame_size,
                      title=f"best-tracked clip {best}: mean centre error {error[best].mean():.1f} px")
    plt.show()
    """),
]

if __name__ == "__main__":
    print(write(NAME, CELLS))
