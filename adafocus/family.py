"""The AdaFocus family side by side: how the method grew, and which backbone fits which clips.

Four generations (docs/design.md, "The family"):

- **V1** (Wang et al., ICCV 2021; ``adafocus_v1``): the patch position is a discrete choice on a grid, made by a
  recurrent policy trained by reinforcement learning (PPO), in three stages;
- **V2** (CVPR 2022; ``adafocus_v2``): the crop is differentiable, so the policy trains end to end with the
  classifier in one stage;
- **V3** (ECCV 2022) / **Uni-AdaFocus-X3D** (``uni_adafocus_x3d``): one box per clip cropped from K frames as a
  space-time cube for a 3-D network;
- **Uni-AdaFocus** (TPAMI 2024; ``uni_adafocus``): where (spatial), when (temporal) and how much (early exit),
  on a 2-D backbone that treats frames alone (TSN-style) or with a temporal shift (``uni_adafocus_tsm``).

:func:`family_table` collects the rows that ``make family`` (the three ``benchmarks/family_*.py`` scripts) and
``make demo`` measured into one DataFrame; :func:`train_family` trains a small family on any config (the
notebook's FAST mode); :func:`adafocus.viz.plots.family_accuracy_vs_macs` draws either.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from adafocus.config import MODEL_TRAIN_OVERRIDES, Config

RESULTS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
DIGITS, MOTION = "digits", "digits x direction"  # the two benchmarks (data.motion "none" / "direction")


@dataclass(frozen=True)
class Member:
    """One family member: its generation, its backbone and how its policy learns."""

    generation: str
    backbone: str
    learns: str


MEMBERS: dict[str, Member] = {
    "full_frame": Member("baseline", "ResNet (2-D)", "no policy: every frame whole"),
    "adafocus_v1": Member("V1", "ResNet (2-D)", "grid position by PPO (reinforcement learning)"),
    "adafocus_v2": Member("V2", "ResNet (2-D)", "box end to end through the crop"),
    "uni_adafocus": Member("Uni", "ResNet (2-D)", "box + frames + exits from surrogates"),
    "uni_adafocus_tsn": Member("Uni", "ResNet (2-D)", "one box per clip, frames from surrogates"),
    "uni_adafocus_tsm": Member("Uni", "TSM", "one box per clip, frames from surrogates"),
    "x3d_full": Member("baseline", "X3D (3-D)", "no policy: the whole clip"),
    "uni_adafocus_x3d": Member("V3 / Uni", "X3D (3-D)", "one box per clip, a space-time cube"),
}
COLUMNS = ["method", "generation", "backbone", "benchmark", "learns", "accuracy", "mmacs", "train_seconds", "seeds"]


def _rows(df: pd.DataFrame, benchmark: str, accuracy: str = "accuracy",
          seconds: str | None = "train_seconds", seconds_scale: float = 1.0) -> list[dict[str, Any]]:
    """One row per method of ``df`` that is a family member (the mean over its seeds)."""
    out = []
    for method, g in df[df["method"].isin(list(MEMBERS))].groupby("method", sort=False):
        m = MEMBERS[method]
        out.append({"method": method, "generation": m.generation, "backbone": m.backbone, "benchmark": benchmark,
                     "learns": m.learns, "accuracy": float(g[accuracy].mean()), "mmacs": float(g["mmacs"].mean()),
                     "train_seconds": float(g[seconds].mean()) * seconds_scale if seconds else float("nan"),
                     "seeds": len(g)})
    return out


def family_table(results_dir: Path = RESULTS_DIR) -> pd.DataFrame:
    """The family's measured rows (test split, label-free, small geometry) from the CSVs in ``results_dir``:
    ``accuracy_vs_macs.csv`` (``make demo``: full frame, V2, Uni-AdaFocus P=24), ``family_v1_final.csv``,
    ``family_x3d.csv`` and ``family_tsm.csv`` (``make family``). A file not written yet is skipped (a message
    says which). Columns: :data:`COLUMNS`; accuracy in [0, 1], mean over the seeds measured."""
    rows: list[dict[str, Any]] = []
    path = results_dir / "accuracy_vs_macs.csv"
    if path.exists():
        demo = pd.read_csv(path)
        demo = demo[~demo["early_exit"].astype(bool) & (demo["recipe"] == "cpu")]
        demo = demo[(demo["method"] != "uni_adafocus") | (demo["patch_size"] == 24)]
        rows += _rows(demo[demo["method"].isin(["full_frame", "adafocus_v2", "uni_adafocus"])], DIGITS)
    sources = [("family_v1_final.csv", DIGITS, dict(accuracy="test_accuracy", seconds="train_minutes",
                                                     seconds_scale=60.0)),
               ("family_x3d.csv", DIGITS, {}), ("family_tsm.csv", MOTION, {})]
    for name, benchmark, how in sources:
        path = results_dir / name
        if not path.exists():
            print(f"benchmarks/results/{name} not found: `make family` writes it")
            continue
        df = pd.read_csv(path)
        if name == "family_v1_final.csv":
            df = df[df["method"] == "adafocus_v1"]  # its other rows repeat the demo's
        rows += _rows(df, benchmark, **how)
    return pd.DataFrame(rows, columns=COLUMNS)


def motion_config(cfg: Config) -> Config:
    """``cfg`` on the motion benchmark (``data.motion="direction"``), with the TSM variant's scale regulariser (0.5),
    named ``<cfg.name>_motion`` (for ``small``: exactly the ``small_motion`` preset, so its trained models are found
    in the cache)."""
    from dataclasses import replace

    return replace(cfg.replace(**{"data.motion": "direction", "train.scale_reg": 0.5}), name=f"{cfg.name}_motion")


def train_family(cfg: Config, motion_cfg: Config | None = None, methods: tuple[str, ...] | None = None,
                 longer_budgets: bool = True, progress: bool = False) -> pd.DataFrame:
    """Train (or load from the cache) the family on ``cfg`` (digits) and the TSM pair on ``motion_cfg`` (the same
    geometry with ``data.motion="direction"``; skipped when None), evaluate each on its test split
    (:func:`adafocus.evaluate.evaluate_model`) and return :func:`family_table`'s columns. ``longer_budgets``: the
    models of :data:`~adafocus.config.MODEL_TRAIN_OVERRIDES` train their longer budget (as ``make family`` does);
    False trains every member ``cfg.train.epochs`` (a quick look)."""
    from adafocus.data.synthetic import load_splits
    from adafocus.evaluate import evaluate_model
    from adafocus.train import train

    methods = methods or tuple(MEMBERS)
    runs = [(m, cfg, DIGITS) for m in methods if m not in ("uni_adafocus_tsm", "uni_adafocus_tsn")]
    if motion_cfg is not None:
        runs += [(m, motion_cfg, MOTION) for m in methods if m in ("uni_adafocus_tsm", "uni_adafocus_tsn")]
    rows = []
    for method, base, benchmark in runs:
        run_cfg = base.replace(**MODEL_TRAIN_OVERRIDES.get(method, {})) if longer_budgets else base
        splits = load_splits(run_cfg.data, progress=progress)
        row = evaluate_model(method, run_cfg, splits, progress=progress)
        seconds = float(train(method, run_cfg, splits, progress=False).history["seconds"].sum())  # cached now
        rows += _rows(pd.DataFrame([{**row, "train_seconds": seconds}]), benchmark)
    return pd.DataFrame(rows, columns=COLUMNS)


def reversal_gap(model: Any, video: Any) -> float:
    """How much the glance features, pooled over time, change when clip ``video`` ``(B, T, C, H, W)`` is played
    backwards: the largest absolute difference of the time-max-pooled glance features of the clip and of its
    reversal (at the same frames, met in the opposite order). 0 for a network that treats frames alone
    (TSN-style: order-blind); above 0 when a temporal shift mixes neighbouring frames (TSM)."""
    import torch

    model.eval()
    T = video.shape[1]
    frames = model.glance_positions(1)[0]  # (T_g,) ascending
    with torch.no_grad():
        forward = model.glance_features(video, frames).feats  # (B, T_g, C_g)
        backward = model.glance_features(video.flip(1), (T - 1 - frames).flip(0)).feats  # same frames, reversed
    return float((forward.amax(1) - backward.amax(1)).abs().max())


# ----- make family: every model it trains, as jobs for adafocus.jobs.run_jobs -----

FAMILY_PRESET, TSM_PRESET = "small", "small_motion"  # the digits benchmark; the motion benchmark (the TSM pair)
TSM_METHODS = ("uni_adafocus_tsm", "uni_adafocus_tsn")
X3D_METHODS = ("uni_adafocus_x3d", "x3d_full")
# About how many seconds each job takes at one thread with another job beside it on 2 cores (``make family`` from
# an empty cache, docs/design.md "The family"): they only order the jobs (adafocus.jobs), never the results.
EXPECTED_SECONDS = {"data": 35, "pretrain": 35, "pretrain_x3d": 365, "uni_adafocus_tsm": 170,
                    "uni_adafocus_tsn": 160, "adafocus_v1": 185, "uni_adafocus_x3d": 370, "x3d_full": 660}


def member_config(method: str, preset: str, seed: int = 0) -> Config:
    """The config ``make family`` trains ``method`` with: the preset, the method's longer budget if any
    (:data:`~adafocus.config.MODEL_TRAIN_OVERRIDES`), training seed ``seed``."""
    from adafocus.config import get_config

    return get_config(preset, **{**MODEL_TRAIN_OVERRIDES.get(method, {}), "train.seed": seed})


def prepare_data(preset: str, images: bool = True) -> None:
    """Generate (or find in the cache) the splits of ``preset`` and, with ``images``, the pretraining's image set."""
    from adafocus.config import get_config
    from adafocus.data.images import load_images
    from adafocus.data.synthetic import load_splits

    load_splits(get_config(preset).data, progress=False)
    if images:
        load_images(get_config(preset), progress=False)


def pretrain_stage(preset: str, x3d: bool = False) -> float:
    """The 2-D backbones' pretraining of ``preset`` (or, with ``x3d``, the X3Ds' at their budget), cached. Returns
    its recorded training seconds."""
    from adafocus.config import get_config
    from adafocus.pretrain import pretrain
    from adafocus.pretrain_x3d import x3d_pretrain_family

    cfg = member_config(X3D_METHODS[0], preset) if x3d else get_config(preset)  # both X3Ds: one budget
    history = pretrain(cfg, progress=False, family=x3d_pretrain_family(cfg) if x3d else None)[1]
    return float(history["seconds"].sum())


def train_member(method: str, preset: str, seed: int = 0) -> float:
    """Train (or load) one family member as ``make family`` does. Returns its recorded training seconds."""
    from adafocus.train import train

    return float(train(method, member_config(method, preset, seed), progress=False).history["seconds"].sum())


def family_jobs(tsm_seeds: tuple[int, ...] = (0,), v1_seeds: tuple[int, ...] = (0, 1),
                member: Callable[[str, str, int], Any] = train_member) -> list:
    """``make family``'s work as :class:`adafocus.jobs.Job` s: the data of each benchmark, the two pretrainings
    (the 2-D one, which both benchmarks share, and the X3Ds'), then ``member(method, preset, seed)`` for the TSM
    pair at every seed of ``tsm_seeds``, the X3D pair and V1 at every seed of ``v1_seeds`` (default
    :func:`train_member`; the studies pass a function that trains and evaluates), each job after what it reads
    from the cache."""
    from adafocus.jobs import Job

    s = EXPECTED_SECONDS
    jobs = [Job("data", prepare_data, (FAMILY_PRESET,), s["data"]),
            Job("data motion", prepare_data, (TSM_PRESET, False), s["data"]),  # the same image set as "data"
            # one 2-D pretraining for both benchmarks: a still image has no motion (the same key, one file)
            Job("pretrain", pretrain_stage, (FAMILY_PRESET,), s["pretrain"], ("data",)),
            Job("pretrain_x3d", pretrain_stage, (FAMILY_PRESET, True), s["pretrain_x3d"], ("data",))]
    jobs += [Job(f"{m} seed {seed}", member, (m, TSM_PRESET, seed), s[m], ("pretrain", "data motion"))
             for seed in tsm_seeds for m in TSM_METHODS]
    jobs += [Job(m, member, (m, FAMILY_PRESET, 0), s[m], ("pretrain_x3d",)) for m in X3D_METHODS]
    jobs += [Job(f"adafocus_v1 seed {seed}", member, ("adafocus_v1", FAMILY_PRESET, seed), s["adafocus_v1"],
                 ("pretrain",)) for seed in v1_seeds]
    return jobs
