"""Builds notebooks/03_temporal_redundancy.ipynb: how many frames matter, and how K frames are drawn from w."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _nb import code, md, parameters, presets, write  # noqa: E402

NAME = "03_temporal_redundancy"

CELLS = [
    md("""
    # 03 · Temporal redundancy: which frames matter?

    The second bet: most frames of a video add little. A network that processes frames at evenly
    spaced times spends much of its budget on frames where nothing useful is visible. Uni-AdaFocus
    lets a **temporal policy** read the cheap glance features of `T_g` frames and output a
    distribution `w` over them; `K` focus frames are then drawn from `w` (in the paper, 16 focus frames
    out of 48 on ActivityNet). The synthetic benchmark makes the question exact: every clip carries the
    mask of frames in which the object is visible.

    This notebook measures (1) what evenly spaced frames see, (2) how `K` frames are drawn from `w`
    (stratified inverse-CDF sampling), (3) how accuracy grows with the number of frames, and (4) what
    a trained model's temporal policy does.
    """),
    parameters(),
    presets(),
    code("""
    import matplotlib.pyplot as plt
    import pandas as pd
    import torch

    from adafocus.config import get_config
    from adafocus.data.synthetic import load_splits
    from adafocus.train import train

    torch.set_num_threads(1)
    cfg = get_config(PRESET, **OVERRIDES)
    splits = load_splits(cfg.data)  # cached under $ADAFOCUS_CACHE
    T, K, Tg = cfg.data.num_frames, cfg.model.num_focus, cfg.model.glance_frames
    """),
    md("""
    ## What do evenly spaced frames see?

    For every `k`, the uniform grid of `k` frames (`floor((j + 1/2) T / k)`): the share of clips in
    which at least one of them shows the object, and the share of the `k` frames that do.
    """),
    code("""
    from adafocus.models.sampling import uniform_indices

    mask = splits["test"].clips.mask  # (N, T) True where the object is visible
    rows = []
    for k in range(1, T + 1):
        seen = mask[:, uniform_indices(T, k)]  # (N, k)
        rows.append({"k": k, "sees it at least once": seen.any(1).float().mean().item(),
                     "informative share of the k frames": seen.float().mean().item()})
    grid = pd.DataFrame(rows).set_index("k")
    ax = grid.plot(marker="o", figsize=(6, 3.2), grid=True, ylim=(0, 1.05), xlabel="k evenly spaced frames",
                   ylabel="share", title=f"uniform frames, {T}-frame clips (K = {K} marked)")
    ax.axvline(K, color="grey", ls=":")
    plt.show()
    """),
    md("""
    Evenly spaced frames see the object in about the share of frames where it is visible (the
    benchmark's `informative_fraction`), whatever `k` is: half of the focus budget lands on empty
    frames. A policy that knew the mask could do better with the same `K`.

    ## Drawing `K` frames from `w`: stratified inverse-CDF sampling

    The temporal policy outputs `w`, a distribution over the `T_g` glance positions. Read it as a
    piecewise-constant density over the clip's time axis; its CDF is piecewise linear. Split [0, 1]
    into `K` equal strata, take one quantile per stratum (a random one in training, the midpoint at
    test), map it through the inverse CDF to a time and round it to a frame; collisions are pushed to
    the next free frame. Bins with much mass catch many quantiles; the strata keep frames spread out.
    """),
    code("""
    from adafocus.models.sampling import sample_frames

    w = torch.full((1, Tg), 0.2 / Tg)
    w[0, Tg // 2:] += 0.8 / (Tg - Tg // 2)  # 80% of the mass on the second half of the clip
    at_test = sample_frames(w, T, K, train=False)[0]
    draws = torch.cat([sample_frames(w, T, K, train=True) for _ in range(2000)])  # (2000, K) training draws
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3))
    a.bar((torch.arange(Tg) + 0.5) * T / Tg - 0.5, w[0], width=0.8 * T / Tg)
    a.set(xlabel="time (frames)", ylabel="w (mass per glance bin)", title="the policy's distribution w")
    b.hist(draws.flatten().numpy(), bins=torch.arange(T + 1).numpy() - 0.5, density=True, rwidth=0.8)
    b.vlines(at_test.numpy(), 0, 0.05, colors="magenta", linewidth=3, label="test-time frames")
    b.set(xlabel="frame index", ylabel="share of draws", title=f"K = {K} frames drawn in training"); b.legend()
    plt.show()
    """),
    md("""
    ## How many frames does the classifier need?

    We take the crop classifier of the shared pretraining (notebook 04's stage 0: true boxes, so
    space is not the issue here) and give it `k` evenly spaced frames for `k = 1 .. T`
    (`temporal_redundancy`, focus-only head). Then, at the model's budget `K`, the same classifier on
    `K` *informative* frames (`frame_mode="oracle"`): the accuracy a perfect temporal policy would buy.
    """),
    code("""
    from adafocus.analysis.redundancy import temporal_redundancy
    from adafocus.train import pretrain_config, pretrain_key

    crop_model = train("oracle", pretrain_config(cfg), splits, key=pretrain_key(cfg)).model  # true boxes, K frames
    study = temporal_redundancy(crop_model, splits["test"], ks=list(range(1, T + 1)))
    ax = study.plot(x="k", y="accuracy", marker="o", figsize=(6, 3.2), grid=True, label="uniform frames, true boxes")
    ax.axhline(1 / cfg.data.num_classes, color="grey", ls=":", label="chance")
    ax.set(xlabel="frames seen (k)", ylabel="top-1 accuracy", title="accuracy against the number of frames")
    ax.legend(); plt.show()
    """),
    code("""
    from adafocus.train import iterate_batches

    def accuracy(model, **modes):
        correct = 0
        for b in iterate_batches(splits["test"], 64, shuffle=False):
            with torch.no_grad():
                out = model(b["video"], gt_boxes=b["boxes"], gt_mask=b["mask"], **modes)
            correct += int((out.logits.argmax(-1) == b["label"]).sum())
        return correct / len(splits["test"])

    for frames in ("uniform", "oracle"):
        print(f"K = {K} {frames:7s} frames, true boxes: {accuracy(crop_model, frame_mode=frames):.1%}")
    """),
    md("""
    ## What the trained model's temporal policy does

    Uni-AdaFocus trains `w` through a surrogate: a `w`-weighted average of glance features is
    classified, so mass moves to frames whose glance features identify the class. Does `w` end up on
    the informative frames? We compare the mean weight of glance frames that show the object with
    those that do not, and the frames it picked (`frame_recall`) with the uniform grid.
    """),
    code("""
    from adafocus.evaluate import policy_report, predict

    model = train("uni_adafocus", cfg, splits).model
    preds = predict(model, splits["test"])
    shown = preds.gt_mask[:, model.glance_idx]  # (N, T_g) is the object visible at each glance frame?
    w = preds.temporal_weights  # (N, T_g)
    print(f"mean w on glance frames showing the object: {w[shown].mean():.3f}, on the others: {w[~shown].mean():.3f}"
          f" (uniform: {1 / Tg:.3f})")
    report = policy_report(preds, T, cfg.data.frame_size)
    print(f"frame recall {report['frame_recall']:.2f} vs evenly spaced frames {report['uniform_frame_recall']:.2f}")
    """),
    md("""
    ## Which frames does the model rely on?

    Leave one frame out (replace it by the clip's mean frame, run the whole model again) and measure
    the drop in the true class's probability (`frame_importance`). If the model relies on the frames
    that show the object, those drops are larger and correlate with the mask.
    """),
    code("""
    from adafocus.analysis.redundancy import frame_importance, importance_correlation
    from adafocus.data.synthetic import SyntheticVideoDataset

    n = min(128, len(splits["test"]))  # leave-one-out runs the model T + 1 times per clip
    subset = SyntheticVideoDataset(splits["test"].clips.subset(range(n)), cfg.data, "test")
    importance = frame_importance(model, subset)
    print(f"correlation of the drop with the mask: {importance_correlation(importance):.2f}")
    ax = importance.groupby("frame")["drop"].mean().plot.bar(figsize=(6, 2.8), color="#1f77b4", rot=0)
    ax.set(xlabel="frame index", ylabel="mean drop of p(true class)", title="leave-one-frame-out")
    plt.show()
    importance.groupby("informative")["drop"].mean().rename("mean drop").to_frame()
    """),
    md("""
    With `FAST = True` the toy model has trained for seconds, so `w` has barely moved from uniform
    and the drops are small and noisy. With `FAST = False` the small preset's model relies clearly on
    the informative frames (its focus network does), but when this notebook was written its `w` had
    not moved either: within 1% of uniform, and a frame recall equal to the uniform grid's. The
    reason is instructive. The temporal surrogate classifies *glance* features, and our glance at
    32² pixels cannot recognise the digit (alone it is at chance, notebook 07): glance features that
    carry no class information give the surrogate nothing to prefer one frame over another. In the
    paper the glance is a MobileNetV2 on 224² frames, good enough to tell useful frames apart.

    ## Exercises

    **Exercise 1: how many evenly spaced frames?** From the `grid` table, the smallest `k` for which
    the uniform grid sees the object in at least 95% of the clips. How does it compare with `K`?
    """),
    code("""
    # Solution
    enough = grid[grid["sees it at least once"] >= 0.95]
    k95 = int(enough.index.min()) if len(enough) else None
    print(f"k = {k95} evenly spaced frames see the object in 95% of the clips (the model's K = {K})")
    """),
    md("""
    **Exercise 2: accuracy after each focus step.** `temporal_redundancy(model, ..., head="exit")`
    reads the model's own exit after `k = 0 .. K` focus steps (`k = 0`: the glance alone). How much
    does each patch add?
    """),
    code("""
    # Solution
    steps = temporal_redundancy(model, splits["test"], ks=list(range(0, K + 1)), head="exit")
    steps[["k", "accuracy", "informative_fraction"]].round(3)
    """),
    md("""
    **Exercise 3: a peaked `w`.** Put all of `w`'s mass on one glance frame and sample at test time.
    Where do the `K` frames go, and why are they all distinct?
    """),
    code("""
    # Solution
    peak = torch.zeros(1, Tg)
    peak[0, Tg // 4] = 1.0
    print("frames:", sample_frames(peak, T, K, train=False)[0].tolist(),
          f"(glance bin {Tg // 4} covers frames {Tg // 4 * T // Tg}..{(Tg // 4 + 1) * T // Tg - 1})")
    print("collisions are pushed to the next free frame, so the K frames cluster right after the peak")
    """),
]

if __name__ == "__main__":
    print(write(NAME, CELLS))
