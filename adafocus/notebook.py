"""What the notebooks share: one setup call, and the steps more than one notebook takes.

Every notebook in ``notebooks/`` starts with a parameters cell (``FAST = True``) and then::

    %matplotlib inline
    from adafocus.notebook import notebook_setup

    PRESET, cfg, splits = notebook_setup(FAST)

``FAST = True`` is the ``fast`` preset (the tiny geometry with a toy schedule: seconds per model, what
CI runs); ``FAST = False`` the ``small`` preset, whose models ``make demo`` trained and cached. The
other helpers here are the few steps several notebooks take (train a model and say which supervision
it had, run a model on one clip, read a result table, the glance diagnostic, ...): notebook cells stay
short calls into the library, and nothing is pasted from one notebook into another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from adafocus.config import MODEL_TRAIN_OVERRIDES, RECIPES, Config, get_config
from adafocus.evaluate import policy_report, predict, supervision
from adafocus.train import TrainResult, train

NOTEBOOK_PRESETS = {True: "fast", False: "small"}  # FAST -> preset
REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"  # where `make demo` writes its tables (cwd-independent)

SUPERVISION_WORDS = {
    "none": "none (label-free: the class label only)",
    "hinted": "hinted (an ablation: true boxes and frame masks in the loss)",
    "oracle": "oracle (handed the true boxes and frames)",
}


class NotebookSetup(NamedTuple):
    """What :func:`notebook_setup` returns: the preset's name, its config and the cached splits."""

    preset: str
    cfg: Config
    splits: dict[str, Any]  # {"train", "val", "test"}: SyntheticVideoDataset; {} when not loaded


def notebook_setup(fast: bool, load_data: bool = True, threads: int = 1) -> NotebookSetup:
    """The setup every notebook runs after its parameters cell.

    ``fast``: the ``fast`` preset (True) or the ``small`` one (False). Sets torch's threads (one, as the
    trainer does per process, unless ``threads``), and loads the synthetic splits of the preset
    (generated once, then cached under ``$ADAFOCUS_CACHE``) unless ``load_data`` is False. Prints one
    line saying what was set up.
    """
    if not isinstance(fast, bool):
        raise TypeError(f"FAST: expected True or False, got {fast!r}")
    from adafocus.data.synthetic import load_splits

    torch.set_num_threads(threads)
    preset = NOTEBOOK_PRESETS[fast]
    cfg = get_config(preset)
    splits = load_splits(cfg.data, progress=False) if load_data else {}
    d, m = cfg.data, cfg.model
    sizes = "/".join(str(len(splits[k])) for k in ("train", "val", "test")) if splits else "not loaded"
    print(f"preset {preset!r}: clips of {d.num_frames} frames at {d.frame_size}x{d.frame_size}, {d.num_classes} "
          f"classes, train/val/test {sizes}; K={m.num_focus} patches of P={m.patch_size}; "
          f"recipe {cfg.train.recipe!r}, {cfg.train.epochs} epochs after the shared pretraining")
    return NotebookSetup(preset, cfg, splits)


def training_config(name: str, cfg: Config, **overrides: Any) -> Config:
    """``cfg`` for model ``name`` as the benchmark trains it: its longer budget, if it has one
    (:data:`~adafocus.config.MODEL_TRAIN_OVERRIDES`), then the dotted ``overrides``."""
    return cfg.replace(**{**MODEL_TRAIN_OVERRIDES.get(name, {}), **overrides})


def supervision_line(name: str, model: nn.Module, cfg: Config) -> str:
    """``name: supervision ...`` from :func:`adafocus.evaluate.supervision`, with the recipe and epochs."""
    return (f"{name}: supervision = {SUPERVISION_WORDS[supervision(model, cfg)]}; recipe {cfg.train.recipe!r}, "
            f"{cfg.train.epochs} epochs")


@dataclass
class TrainedModel(TrainResult):
    """A :class:`~adafocus.train.TrainResult` that also keeps the config it was trained under."""

    cfg: Config | None = None


def train_model(name: str, cfg: Config, splits: dict[str, Any] | None = None, quiet: bool = False,
                **overrides: Any) -> TrainedModel:
    """Train (or load from the cache) model ``name`` as the benchmark does (:func:`training_config`), and
    print which supervision it had (``quiet``: don't). ``overrides``: dotted config fields as keywords,
    e.g. ``**{"train.recipe": "paper"}``."""
    run_cfg = training_config(name, cfg, **overrides)
    result = TrainedModel(**vars(train(name, run_cfg, splits, progress=False)), cfg=run_cfg)
    if not quiet:
        print(supervision_line(name, result.model, run_cfg))
    return result


def supervision_table(models: dict[str, TrainedModel]) -> pd.DataFrame:
    """One row per trained model: its recipe, epochs and supervision (``none`` / ``hinted`` / ``oracle``)."""
    return pd.DataFrame([{"model": label, "recipe": r.cfg.train.recipe, "epochs": r.cfg.train.epochs,
                          "supervision": supervision(r.model, r.cfg)} for label, r in models.items()]).set_index("model")


@torch.no_grad()
def run_clip(model: nn.Module, item: dict[str, Any]):
    """``model`` (eval mode) on one dataset item (``item["video"]`` ``(T, C, H, W)``): its output for a batch of one."""
    from adafocus.data.batches import ground_truth_kwargs

    batch = {k: (v[None] if isinstance(v, torch.Tensor) and v.dim() else v) for k, v in item.items()}
    return model.eval()(batch["video"], **ground_truth_kwargs(model, batch))


def show_policy(model: nn.Module, item: dict[str, Any], title: str | None = None) -> Figure:
    """The filmstrip of one clip: the true box (when the data has one), the patches ``model`` cropped at the
    frames it chose and its temporal weights ``w`` (:func:`adafocus.viz.filmstrips.policy_filmstrip`)."""
    from adafocus.viz.filmstrips import policy_filmstrip

    out = run_clip(model, item)
    weights = None if out.temporal_weights is None else out.temporal_weights[0]
    glance_idx = None if out.glance_idx is None else out.glance_idx[0]
    if title is None and "label" in item:
        title = f"label {int(item['label'])}, predicted {int(out.logits.argmax())}"
    return policy_filmstrip(item["video"], item.get("boxes"), item.get("mask"), out.boxes[0], out.frame_idx[0],
                            weights, glance_idx, title=title)


def evaluation_row(model: nn.Module, cfg: Config, dataset) -> dict[str, float]:
    """Accuracy on ``dataset`` and the policy metrics beside their references (random boxes, uniform frames)."""
    preds = predict(model, dataset)
    return {"accuracy": preds.accuracy, **policy_report(preds, cfg.data.num_frames, cfg.data.frame_size)}


def results_table(name: str, columns: tuple[str, ...] = ()) -> pd.DataFrame | None:
    """``benchmarks/results/<name>`` as a DataFrame, or None when ``make demo`` has not written it yet or it was
    written by an older version without ``columns`` (a message says which)."""
    path = RESULTS_DIR / name
    if not path.exists():
        print(f"benchmarks/results/{name} not found: `make demo` writes it")
        return None
    df = pd.read_csv(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        print(f"benchmarks/results/{name} predates this version (no {missing}): rerun `make demo`")
        return None
    return df


def recipes_table() -> pd.DataFrame:
    """The three training recipes side by side (:data:`~adafocus.config.RECIPES`): one row per field they set."""
    fields = sorted({f for r in RECIPES.values() for f in r})
    return pd.DataFrame({name: [RECIPES[name].get(f, "") for f in fields] for name in ("paper", "cpu", "hinted")},
                        index=pd.Index(fields, name="field"))


GLANCE_VARIANTS = {"random init": {"pretrain.epochs": 0}, "pretrained on the image set": {}}


def glance_diagnostic(cfg: Config, splits: dict[str, Any], fast: bool) -> pd.DataFrame:
    """Why the glance learned nothing before: glance-only test accuracy from random weights vs from the shared
    pretraining. Reads ``benchmarks/results/glance_diagnostic.csv`` (``benchmarks/glance_diagnostic.py``,
    small preset) when it exists and ``fast`` is False; otherwise trains the two glance-only models
    under ``cfg`` (seconds on the ``fast`` preset). Columns: variant, pretrained, test_accuracy, source."""
    csv = None if fast else results_table("glance_diagnostic.csv", ("variant", "pretrained", "test_accuracy"))
    if csv is not None:
        return csv.assign(source="benchmarks/results/glance_diagnostic.csv")
    rows = []
    for variant, overrides in GLANCE_VARIANTS.items():
        result = train_model("glance_only", cfg, splits, quiet=True, **overrides)
        rows.append({"variant": variant, "pretrained": result.cfg.pretrain.epochs > 0,
                     "test_accuracy": predict(result.model, splits["test"]).accuracy,
                     "supervision": supervision(result.model, result.cfg), "source": f"trained now ({cfg.name})"})
    return pd.DataFrame(rows)


def learning_to_look(result: TrainedModel, splits: dict[str, Any], clip: int = 0) -> Figure:
    """The recorded policy of ``result`` (``result.trace``: before training and after every epoch) on recorded
    validation clip ``clip``, drawn by :func:`adafocus.viz.learning_to_look.learning_to_look_grid`."""
    from adafocus.viz.learning_to_look import learning_to_look_grid

    item = splits["val"][int(result.trace[0]["clip_index"][clip])]
    return learning_to_look_grid(item["video"], result.trace, clip, item.get("boxes"), item.get("mask"))


def trace_summary(result: TrainedModel, splits: dict[str, Any]) -> pd.DataFrame:
    """Per recorded epoch, on the recorded validation clips: the glance boxes' mean IoU with the true box at the
    frames where the object is visible, and the share of ``w`` on those frames (uniform ``w``: the share of
    informative glance frames)."""
    from adafocus.analysis.policy_metrics import box_iou

    index = result.trace[0]["clip_index"]
    clips = splits["val"].clips
    rows = []
    for rec in result.trace:
        pos = rec["glance_idx"]  # (N, T_g)
        truth = clips.boxes[index].gather(1, pos[..., None].expand(-1, -1, 4))  # (N, T_g, 4)
        visible = clips.mask[index].gather(1, pos)  # (N, T_g)
        row = {"epoch": rec["epoch"], "box_iou": float(box_iou(rec["glance_boxes"], truth)[visible].mean())}
        if "weights" in rec:
            row["w_on_informative"] = float((rec["weights"] * visible).sum(1).mean())
            row["informative_share"] = float(visible.float().mean(1).mean())
        rows.append(row)
    return pd.DataFrame(rows).set_index("epoch")


@torch.no_grad()
def accuracy_with_modes(model: nn.Module, dataset, patch_mode: str | None = None, frame_mode: str | None = None,
                        batch_size: int = 64) -> float:
    """Test accuracy of ``model`` with its patch or frame mode overridden for the call (e.g.
    ``frame_mode="oracle"``: the truly informative frames; ``"uniform"``: the evenly spaced ones). The
    ground truth reaches the model, so only the oracle modes read it."""
    from adafocus.data.batches import iterate_batches

    model.eval()
    correct = 0
    for b in iterate_batches(dataset, batch_size, shuffle=False):
        out = model(b["video"], b.get("boxes"), b.get("mask"), patch_mode=patch_mode, frame_mode=frame_mode)
        correct += int((out.logits.argmax(-1) == b["label"]).sum())
    return correct / max(len(dataset), 1)


def clip_track(model: nn.Module, item: dict[str, Any]):
    """``model`` on one clip, and its box in every frame (:func:`adafocus.viz.trajectories.policy_track`):
    returns ``(output, track (T, 4))``."""
    from adafocus.viz.trajectories import policy_track

    out = run_clip(model, item)
    track = policy_track(item["video"].shape[0], out.glance_boxes[0], out.glance_idx[0], out.boxes[0],
                         out.frame_idx[0])
    return out, track
