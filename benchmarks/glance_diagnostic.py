"""Why did the glance network learn nothing? A diagnostic that separates the causes (issue 19).

    python benchmarks/glance_diagnostic.py [--preset small] [--workers 2]

Trains the glance-only model (the glance network and its exits, 8 glance frames) under each
combination of two suspects, everything else equal (the ``small`` preset):

- **pretraining**: from random weights (``pretrain.epochs=0``) or from the shared pretraining on the
  object-centric image set (the default);
- **pooling** of the glance map into a frame's feature: average (the paper's) or max (the default).

and, at the default, two glance geometries: the CPU default (32² input, stride 4: an 8x8 map) and
the full-resolution 64² input at stride 8 (also an 8x8 map, 3.6x the MACs). Writes
``benchmarks/results/glance_diagnostic.csv``: test accuracy, the glance's MACs per video, its share
of Uni-AdaFocus's MACs at the same geometry, training seconds.
"""

from __future__ import annotations

import time

from adafocus.benchmark import variants_main

VARIANTS = {
    "random init, avg pool": {"pretrain.epochs": 0, "model.glance_pool": "avg"},
    "random init, max pool": {"pretrain.epochs": 0},
    "pretrained, avg pool": {"model.glance_pool": "avg"},
    "pretrained, max pool (default)": {},
    "pretrained, max pool, 64² input, stride 8": {"model.glance_size": 64, "model.glance_stride": 8},
}


def run(args: tuple[str, str, dict]) -> dict:
    from adafocus.config import get_config
    from adafocus.data.synthetic import load_split
    from adafocus.evaluate import predict
    from adafocus.flops import model_cost
    from adafocus.train import train

    preset, name, overrides = args
    cfg = get_config(preset, **overrides)
    t0 = time.time()
    result = train("glance_only", cfg, progress=False)
    seconds = 0.0 if result.from_cache else time.time() - t0
    test = predict(result.model, load_split(cfg.data, "test", progress=False))
    uni = model_cost("uni_adafocus", cfg)
    glance = uni["components"]["glance"]
    return {"variant": name, "pretrained": cfg.pretrain.epochs > 0, "glance_pool": cfg.model.glance_pool,
            "glance_size": cfg.model.glance_size, "glance_stride": cfg.model.glance_stride,
            "train_acc_last_epoch": float(result.history["train_acc"].iloc[-1]), "test_accuracy": test.accuracy,
            "glance_mmacs_per_video": 1e3 * glance, "glance_share_of_uni_adafocus": glance / uni["total_gmacs"],
            "train_seconds": seconds}


if __name__ == "__main__":
    variants_main(run, VARIANTS, "glance_diagnostic.csv", __doc__)
