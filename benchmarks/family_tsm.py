"""Uni-AdaFocus-TSM against its shift-free (TSN-style) twin on the motion-dependent benchmark (issue 15, part 1).

    python benchmarks/family_tsm.py [--preset small_motion] [--workers 2] [--seeds 0 1 2]

Trains ``uni_adafocus_tsm`` and ``uni_adafocus_tsn`` (adafocus.models.tsm; the same network, the same MACs,
with and without the temporal shift) label-free (recipe ``cpu``, scale regulariser 0.5: the ``small_motion``
preset) on the benchmark where the class is the digit *and the direction it moves in* (``data.motion =
"direction"``; docs/design.md, "The motion-dependent variant"), cached like every model (a second run reads
them back), and evaluates both on the test split, for every seed of ``--seeds`` (``train.seed``: the
initialisation, the random patches and the order of the clips; the pretraining and the data are the same). Writes
``benchmarks/results/family_tsm.csv``: method, seed, data, accuracy, mmacs, train_seconds (the training's own measured seconds, also when read from the cache), then
digit_accuracy and direction_accuracy (the digit and the direction of the answer scored separately: an
order-blind model is at most at chance, 50%, on the direction), the glance exit's accuracy and the direction
of its answer, val accuracy,
and epochs. ``direction_accuracy_center_uniform`` scores the direction
with the policies replaced by the center box and the uniform frames: the shift-free model is then order-blind
end to end and at chance; with its own policies it is a little above (they read the glance frames in order,
and where the one box sits along the path shows in the crops).

``make family`` (``benchmarks/family.py``) runs :func:`evaluate_one` as its jobs, then :func:`tsm_table`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from adafocus.benchmark import RESULTS_DIR, map_in_workers, study_arguments

METHODS = ("uni_adafocus_tsm", "uni_adafocus_tsn")
CSV_NAME = "family_tsm.csv"


def evaluate_one(args: tuple[str, str, int]) -> dict:
    """Train (or load) ``method`` at ``preset`` with training seed ``seed`` and score it on the test split: one CSV
    row."""
    from adafocus.data.synthetic import label_parts, load_split
    from adafocus.evaluate import inference_macs, predict
    from adafocus.family import member_config
    from adafocus.train import train

    preset, method, seed = args
    cfg = member_config(method, preset, seed)
    t0 = time.time()
    result = train(method, cfg, progress=False)
    test = predict(result.model, load_split(cfg.data, "test", progress=False))
    pred, labels = test.logits.argmax(-1), test.labels
    parts = (lambda y: [label_parts(cfg.data, int(k)) for k in y])
    p, t = parts(pred), parts(labels)
    # the same model with its policies replaced by the center box and the uniform frames: the shift-free model is
    # then order-blind end to end (its policies are its only order-aware parts), so its direction is at chance
    fixed = _direction_accuracy(result.model, load_split(cfg.data, "test", progress=False), cfg,
                                patch_mode="center", frame_mode="uniform")
    h = result.history
    return {"method": method, "seed": seed, "data": f"{preset} (data.motion={cfg.data.motion}, {cfg.data.num_classes} classes)",
            "accuracy": test.accuracy, "mmacs": inference_macs(result.model, cfg) / 1e6,
            "train_seconds": float(h["seconds"].sum()),
            "digit_accuracy": sum(a[0] == b[0] for a, b in zip(p, t)) / len(t),
            "direction_accuracy": sum(a[1] == b[1] for a, b in zip(p, t)) / len(t),
            "direction_accuracy_center_uniform": fixed,
            "glance_exit_accuracy": float((test.exit_logits[:, 0].argmax(-1) == labels).float().mean()),
            "glance_direction_accuracy": sum(a[1] == b[1] for a, b in zip(parts(test.exit_logits[:, 0].argmax(-1)), t))
            / len(t),
            "val_accuracy": float(h["val_acc"].iloc[-1]), "epochs": int(h["epoch"].iloc[-1]),
            "from_cache": result.from_cache, "wall_seconds_this_run": time.time() - t0}


STABLE_COLUMNS = ("method", "seed", "data", "accuracy", "mmacs", "train_seconds", "digit_accuracy", "direction_accuracy",
                  "direction_accuracy_center_uniform", "glance_exit_accuracy", "glance_direction_accuracy",
                  "val_accuracy", "epochs")


def _direction_accuracy(model, dataset, cfg, **modes) -> float:
    """Fraction of test clips whose answer has the right direction, with the model's modes overridden."""
    import torch

    from adafocus.data.batches import iterate_batches

    right = total = 0
    model.eval()
    with torch.no_grad():
        for batch in iterate_batches(dataset, 100, shuffle=False, pad=False):
            pred = model(batch["video"], **modes).logits.argmax(-1)
            right += int(((pred % 2) == (batch["label"] % 2)).sum()) if cfg.data.motion == "direction" else 0
            total += len(pred)
    return right / max(total, 1)


def run_family_tsm(preset: str = "small_motion", workers: int = 2, results_dir: Path = RESULTS_DIR,
                   seeds: tuple[int, ...] = (0,)) -> pd.DataFrame:
    """Train both models for every seed (in ``workers`` processes, one thread each) and write their table
    (:func:`tsm_table`). Returns the table."""
    from adafocus.config import get_config
    from adafocus.data.synthetic import load_splits
    from adafocus.pretrain import pretrain

    cfg = get_config(preset)
    load_splits(cfg.data)  # the data once, before the workers start
    if cfg.pretrain.epochs:
        pretrain(cfg)  # the shared pretraining once (cached: the small preset's)
    jobs = [(preset, m, seed) for seed in seeds for m in METHODS]
    return tsm_table(map_in_workers(evaluate_one, jobs, workers), results_dir)


def tsm_table(rows: list[dict], results_dir: Path = RESULTS_DIR) -> pd.DataFrame:
    """:func:`evaluate_one`'s rows as ``<results_dir>/family_tsm.csv``; prints the table and the gap of every seed."""
    df = pd.DataFrame(rows)
    results_dir.mkdir(parents=True, exist_ok=True)
    # the file holds what a rerun from the cache reproduces (not this run's wall time or cache state)
    decimals = {c: 1 if c == "train_seconds" else 4 for c in STABLE_COLUMNS}
    df[list(STABLE_COLUMNS)].round(decimals).to_csv(results_dir / CSV_NAME, index=False)
    print(df.round(4).to_string(index=False))
    acc = df.pivot(index="seed", columns="method", values="accuracy")
    gap = 100 * (acc["uni_adafocus_tsm"] - acc["uni_adafocus_tsn"])
    print("TSM - TSN, points of accuracy by seed: " + ", ".join(f"{s}: {g:+.1f}" for s, g in gap.items())
          + f"; mean {gap.mean():+.1f}, at {df['mmacs'].iloc[0]:.2f} vs {df['mmacs'].iloc[1]:.2f} MMACs per video")
    return df


def main() -> None:
    args = study_arguments(__doc__, "small_motion", seeds=True)
    run_family_tsm(args.preset, args.workers, seeds=tuple(args.seeds))


if __name__ == "__main__":
    main()
