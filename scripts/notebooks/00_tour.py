"""Builds notebooks/00_tour.ipynb: the whole method in ten minutes."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _nb import code, md, parameters, presets, write  # noqa: E402

NAME = "00_tour"

CELLS = [
    md("""
    # 00 · A tour of Uni-AdaFocus in ten minutes

    A video classifier that runs a big CNN on every pixel of every frame wastes most of its work in
    three ways:

    - **spatial redundancy**: what tells you the class covers a small part of each frame;
    - **temporal redundancy**: only some frames show it; the rest add nothing;
    - **sample-wise redundancy**: easy videos could be answered after a quick look, hard ones need more.

    **Uni-AdaFocus** (Wang et al., TPAMI 2024) attacks all three in one network. A cheap *glance*
    network skims the clip at low resolution; a *spatial policy* decides where to look (a box per
    frame), a *temporal policy* decides when (which `K` frames); an expensive *focus* network sees
    only those `K` small patches; a classifier with an *exit after every step* stops as soon as it
    is confident. On ActivityNet it reaches 80.7% mAP at 27.2 GMACs per video (the best earlier
    method: 76.9% at 21.7), and with early exit 78.3% at only 9.1 GMACs: about 4.8x fewer
    multiply-accumulates than its competitors at equal accuracy.

    This notebook runs the whole story once: **data → model → train a tiny one → where it looked →
    what it cost**. The later notebooks take each step apart.
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

    torch.set_num_threads(1)  # the trainer runs one thread per process as well (cfg.train.num_threads)
    cfg = get_config(PRESET, **OVERRIDES)
    splits = load_splits(cfg.data)  # generated once, then cached under $ADAFOCUS_CACHE
    T, C, H, W = splits["test"].clips.videos.shape[1:]
    print({name: len(ds) for name, ds in splits.items()}, f"clips of T={T} frames, {C}x{H}x{W}")
    """),
    md("""
    ## 1. The data: redundancy you can see

    Real datasets cannot be downloaded here, and nobody knows where their information sits anyway.
    The workbench's default benchmark is synthetic: a small handwritten digit (the label) moves over
    a cluttered photo and is visible only in some frames. Every clip carries its **ground truth**:
    the digit's box in every frame (green; dashed where the digit is hidden) and the mask of
    informative frames. Notebook 01 explains the generator and its knobs.
    """),
    code("""
    from adafocus.data import redundancy_summary
    from adafocus.data.preview import filmstrip_figure

    display(filmstrip_figure(splits["test"].clips, [0, 1, 2]))  # a matplotlib Figure (not pyplot's): display it
    pd.Series(redundancy_summary(splits["test"].clips)).round(3).rename("share of the test clips")
    """),
    md("""
    `box_fraction` is the share of a frame inside the digit's box, `informative_fraction` the share
    of frames that show it, `useful_fraction` the share of all pixels that carry the label. A
    network that processes everything spends almost all of its work elsewhere.

    ## 2. The model: glance, decide, focus, classify

    One class, `UniAdaFocus`, with switches; `create_model(name, cfg)` builds a named variant (the
    method itself, its special cases such as AdaFocusV2, and the baselines). Its parts:

    | part | what it does | paper | here |
    |---|---|---|---|
    | `glance` | cheap CNN on `T_g` downsampled frames | MobileNetV2 on 224² | tiny MobileNetV2 |
    | `spatial_policy` | a box per glance frame | 3-D convs + conv head | 3-D convs + soft-argmax head |
    | `temporal_policy` | a distribution `w` over the glance frames → `K` frames | 1-D convs | 1-D convs |
    | `focus` | expensive CNN on `K` patches resampled to `P x P` | ResNet-50, P = 96..192 | small ResNet |
    | `classifier` | an exit after every glance frame and every patch | MLP + max-pool | the same |
    """),
    code("""
    from adafocus.models.registry import create_model, list_models

    model = create_model("uni_adafocus", cfg).eval()
    for name, part in model.named_children():
        print(f"{name:16s} {sum(p.numel() for p in part.parameters()):>9,d} parameters")
    print("registered models:", ", ".join(list_models()))
    """),
    md("""
    One untrained forward pass on one clip shows what the model decides: the exits' logits (one
    prediction per step), the `K` chosen frames and a box `(x0, y0, x1, y1)` in pixels for each.
    Untrained, the temporal policy is uniform (evenly spaced frames) and the boxes sit in the centre.
    """),
    code("""
    with torch.no_grad():
        out = model(splits["test"][0]["video"][None])  # a batch of one clip (1, T, C, H, W)
    print("exit logits", tuple(out.exit_logits.shape), "= (batch, T_g glance exits + K focus exits, classes)")
    print("chosen frames", out.frame_idx[0].tolist())
    print("boxes", out.boxes[0].round().tolist())
    """),
    md("""
    ## 3. Train a tiny one

    `train(name, cfg)` runs the two-phase AdaFocus recipe (notebook 04): a shared pretraining of the
    backbones on object-centred crops (our stand-in for ImageNet weights), then end to end with the
    policies, which learn through differentiable *surrogate* losses. Checkpoints are cached by the
    config's hash, so running this again (or another notebook with the same config) loads instantly.
    With `FAST = True` this is a toy schedule of seconds: expect noisy, modest numbers. With
    `FAST = False` it loads the small-preset model that `make demo` trained.
    """),
    code("""
    from adafocus.viz.plots import learning_curves

    result = train("uni_adafocus", cfg, splits)
    model = result.model  # in eval mode
    learning_curves(result.history, title=f"Uni-AdaFocus ({cfg.name} preset): validation accuracy")
    plt.show()
    result.history[["stage", "epoch", "train_loss", "train_acc", "val_acc", "seconds"]].round(3)
    """),
    md("""
    ## 4. Where did it look?

    The benchmark knows where the digit is, so the policy can be scored: `box_iou` is the overlap
    of the chosen boxes with the true box (at frames where the digit is visible) next to
    `random_box_iou`, boxes of the same size placed at random; `frame_recall` is the share of
    informative frames the temporal policy found, next to `uniform_frame_recall` for evenly spaced
    frames. A policy that learned something beats its reference.
    """),
    code("""
    from adafocus.evaluate import predict, policy_report

    preds = predict(model, splits["test"])
    n = cfg.data.num_classes
    print(f"test accuracy: {preds.accuracy:.1%} ({n} classes, chance {1 / n:.0%})")
    pd.Series(policy_report(preds, cfg.data.num_frames, cfg.data.frame_size)).round(3)
    """),
    md("""
    One clip: each frame with its true box (green), the patches the model cropped (magenta, on the
    frames it chose) and, underneath, the temporal policy's weights `w` over the glance frames with
    the informative frames shaded.
    """),
    code("""
    from adafocus.viz.filmstrips import policy_filmstrip

    item = splits["test"][1]
    with torch.no_grad():
        out = model(item["video"][None])
    policy_filmstrip(item["video"], item["boxes"], item["mask"], out.boxes[0], out.frame_idx[0],
                     out.temporal_weights[0], out.glance_idx,
                     title=f"label {int(item['label'])}, predicted {int(out.logits.argmax())}")
    plt.show()
    """),
    md("""
    ## 5. What did it cost?

    Cost is counted, not estimated: `adafocus.flops` runs the model under torch's FLOP counter and
    reports **multiply-accumulates (MACs)**, the unit the paper calls FLOPs. The focus network's
    cost depends only on the patch size `P`, never on the box, so a few small patches are far
    cheaper than whole frames.
    """),
    code("""
    from adafocus.flops import model_cost
    from adafocus.viz.plots import METHOD_STYLE, method_label

    names = ["glance_only", "uni_adafocus", "lowres_full_frame", "full_frame"]
    mmacs = [1e3 * model_cost(name, cfg)["total_gmacs"] for name in names]
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    ax.barh([method_label(n) for n in names], mmacs, color=[METHOD_STYLE[n][1] for n in names])
    ax.set_xlabel("MMACs per video (10^6 multiply-accumulates)")
    ax.set_title(f"Cost of one video, {cfg.name} preset")
    plt.show()
    """),
    md("""
    The same counter at the paper's sizes (`get_config("full")`: 224² frames, MobileNetV2 glance on
    16 frames, ResNet-50 focus on 16 patches of 128²) reproduces the published per-video total of
    27.23 GMACs: 16 x 0.2995 (glance) + 16 x 1.3346 (focus) + 0.8225 (spatial policy) + 0.0041
    (temporal policy) + 0.26 (classifier).
    """),
    code("""
    paper = model_cost("uni_adafocus", get_config("full"))
    print(f"total: {paper['total_gmacs']:.2f} GMACs per video (published: 27.23)")
    pd.Series(paper["components"]).round(4).rename("GMACs per video")
    """),
    md("""
    ## Where next

    | notebook | what it takes apart |
    |---|---|
    | 01 the data | the generator, its knobs and its ground truth |
    | 02 spatial redundancy | how small a crop can be, and what a patch costs |
    | 03 temporal redundancy | how many frames matter; sampling `K` frames from `w` |
    | 04 training | the two-phase recipe, the surrogates, and why the location head matters |
    | 05 patch trajectories | explore where a trained model looks, frame by frame |
    | 06 accuracy vs MACs | the benchmark: every method and budget on one plot |
    | 07 early exit | sample-wise savings, calibrated on validation, with real exits |
    | 08 what the model looks at | attributions with captum |
    | 09 your own videos | a folder of mp4 files and a label file, end to end |

    ## Exercises

    **Exercise 1: the price of a bigger patch.** The focus network's cost grows with the patch side
    `P`. Count the focus cost per patch for a few values of `P` (`model.patch_size` override) and
    check that it grows roughly like `P²`.
    """),
    code("""
    # Solution
    for P in (8, 16, 24, 32):
        c = model_cost("uni_adafocus", get_config(PRESET, **{**OVERRIDES, "model.patch_size": P}))
        per_patch = 1e3 * c["components"]["focus_per_patch"]
        print(f"P = {P:2d}: {per_patch:7.3f} MMACs per patch, {per_patch / P**2 * 1e3:.2f} kMACs per pixel")
    """),
    md("""
    **Exercise 2: does seeing the digit help?** Split the test clips by whether at least one of the
    model's chosen frames shows the digit (`preds.gt_mask` at `preds.frame_idx`) and compare the
    accuracy of the two groups.
    """),
    code("""
    # Solution
    seen = preds.gt_mask.gather(1, preds.frame_idx).any(dim=1)  # (N,) at least one chosen frame shows it
    correct = preds.logits.argmax(-1) == preds.labels
    for name, group in [("digit seen in a chosen frame", seen), ("digit never seen", ~seen)]:
        share, acc = group.float().mean(), correct[group].float().mean()
        print(f"{name:28s}: {share:4.0%} of the clips, accuracy {acc:.1%}")
    """),
    md("""
    **Exercise 3: what do the patches add?** Train the `glance_only` baseline (the glance network and
    its exits, no patches) and compare its accuracy and cost with Uni-AdaFocus.
    """),
    code("""
    # Solution
    glance = train("glance_only", cfg, splits).model
    for name, m in [("glance_only", glance), ("uni_adafocus", model)]:
        acc = predict(m, splits["test"]).accuracy
        print(f"{name:13s} accuracy {acc:.1%} at {1e3 * model_cost(name, cfg)['total_gmacs']:.2f} MMACs per video")
    """),
]

if __name__ == "__main__":
    print(write(NAME, CELLS))
