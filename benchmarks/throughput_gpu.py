"""Wall clock on a GPU: videos per second of Uni-AdaFocus beside the full-frame baseline, in one run.

    python benchmarks/throughput_gpu.py [--preset small] [--batch-sizes 1 32 256 1024] [--repeats 10]
    python benchmarks/throughput_gpu.py --preset full --random-clips 64 --per-sample 64 --batch-sizes 1 8 32

The paper reports AdaFocus as *hardware friendly* from GPU timings; the workbench's own goals are on a
CPU (``benchmarks/throughput.py``). This times the same models on whatever CUDA device is there (no GPU
is needed anywhere else in the workbench): each method's inference copy with its batch norms folded
(:func:`~adafocus.models.inference.optimize_for_inference` without the CPU-only packed convolutions), in
float32 and under bfloat16 autocast, ``--repeats`` timed samples of ``--per-sample`` test clips per method
and setting, methods interleaved, after a warm-up (:func:`adafocus.benchmark.time_interleaved`; the clips
are on the GPU before the clock starts, and every call waits for the GPU before it returns).
Trained weights come from the cache when it has them; otherwise untrained models are timed (speed does not
depend on the weights; the ``trained`` column says which). ``--random-clips N``: N clips of random pixels in the
preset's shape instead of its test split (the ``full`` preset, the paper's geometry, has no data). Writes
``benchmarks/results/throughput_gpu.csv``: device, preset, clips, method, dtype, batch_size, gmacs, videos_per_s, spread,
speedup_vs_full, hardware_efficiency (speedup / MACs ratio), trained.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import torch

from adafocus.benchmark import RESULTS_DIR, add_speedups, inference_models, iqr, time_interleaved
from adafocus.config import DataConfig, get_config
from adafocus.data.synthetic import load_split
from adafocus.evaluate import inference_macs
from adafocus.models.inference import optimize_for_inference

DTYPES = {"float32": None, "bfloat16": torch.bfloat16}


def runner(model: torch.nn.Module, dtype: torch.dtype | None, device: torch.device):
    """``fn(batch)``: the model on ``batch["video"]`` (already on ``device``), under autocast to ``dtype`` when
    given, returning once the device has finished."""
    def run(batch: dict) -> None:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            model(batch["video"])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return run


def random_clips(cfg: DataConfig, n: int, seed: int = 0) -> SimpleNamespace:
    """``n`` clips of uniformly random pixels in ``cfg``'s shape, with the fields :func:`adafocus.benchmark.clip_batches` reads."""
    g = torch.Generator().manual_seed(seed)
    shape = (n, cfg.num_frames, cfg.channels, cfg.frame_size, cfg.frame_size)
    return SimpleNamespace(videos=torch.randint(0, 256, shape, dtype=torch.uint8, generator=g),
                           labels=torch.zeros(n, dtype=torch.long), boxes=torch.zeros(n, cfg.num_frames, 4),
                           mask=torch.ones(n, cfg.num_frames, dtype=torch.bool))


def run_gpu_throughput(preset: str = "small", methods: tuple[str, ...] = ("full_frame", "uni_adafocus"),
                       batch_sizes: tuple[int, ...] = (1, 32, 256, 1024), repeats: int = 10, per_sample: int = 1024,
                       device: str = "cuda", results_dir: Path = RESULTS_DIR, random: int = 0) -> pd.DataFrame:
    dev = torch.device(device)
    torch.backends.cudnn.benchmark = dev.type == "cuda"
    data = get_config(preset).data
    clips = random_clips(data, random) if random else load_split(data, "test", progress=False).clips
    runners, info = {}, {}
    for name, (model, cfg, trained) in inference_models(preset, methods, train_missing=False).items():
        fast = optimize_for_inference(model, packed_convs=False)
        gmacs = inference_macs(fast, cfg) / 1e9  # counted on the CPU: MACs do not depend on the device
        fast = fast.to(dev)
        for dtype_name, dtype in DTYPES.items():
            runners[(name, dtype_name)] = runner(fast, dtype, dev)
            info[(name, dtype_name)] = {"method": name, "dtype": dtype_name, "gmacs": gmacs, "trained": trained}
    rows = []
    for bs in batch_sizes:
        for key, v in time_interleaved(runners, clips, bs, repeats, f"{device}, batch {bs}", per_sample,
                                       dev).items():
            rows.append({"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else device,
                         "preset": preset, "clips": f"{random} random" if random else "test split", **info[key],
                         "batch_size": bs, "videos_per_s": float(torch.tensor(v).median()), "spread": iqr(v)})
    df = add_speedups(pd.DataFrame(rows), ["dtype", "batch_size"])
    df = df[["device", "preset", "clips", "method", "dtype", "batch_size", "gmacs", "videos_per_s", "spread",
             "speedup_vs_full", "hardware_efficiency", "trained"]]
    results_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(results_dir / "throughput_gpu.csv", index=False)
    print(df.round(4).to_string(index=False))
    return df


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--methods", nargs="+", default=["full_frame", "uni_adafocus"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 256, 1024])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--per-sample", type=int, default=1024, help="clips per timed sample (batch sizes divide it)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--random-clips", type=int, default=0, help="time N random clips instead of the test split")
    args = parser.parse_args()
    if "full_frame" not in args.methods:
        parser.error("--methods must include full_frame (the speedups are against it)")
    run_gpu_throughput(args.preset, tuple(args.methods), tuple(args.batch_sizes), args.repeats, args.per_sample,
                       args.device, args.results_dir, args.random_clips)


if __name__ == "__main__":
    main()
