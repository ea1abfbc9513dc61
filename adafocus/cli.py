"""Command line: ``python -m adafocus <command>``.

    data generate|preview   make the synthetic benchmark (cached) / a filmstrip PNG and an mp4
    models                  list the registered models
    train                   train one model (loads the cached checkpoint when present; --recipe paper|cpu|hinted)
    evaluate                test accuracy, MACs and policy metrics of a trained model
    flops                   MACs per component (``--json`` for machine-readable output)
    bench                   the accuracy-vs-MACs benchmark (every method and budget)
    figures                 regenerate every figure into figures/
    demo                    everything ``make demo`` does
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from typing import Any, NoReturn, Sequence

from adafocus.checks import InputError, output_dir
from adafocus.config import PRESETS, ConfigError, get_config


def _parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["model.patch_size=32", "train.lr=1e-3"]`` -> ``{"model.patch_size": 32, "train.lr": 0.001}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. model.patch_size=32")
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


def _config(args: argparse.Namespace):
    overrides = _parse_overrides(args.set or [])
    if getattr(args, "recipe", None) is not None:  # the recipe first: --set switches apply on top of it
        overrides = {"train.recipe": args.recipe, **overrides}
    return get_config(args.preset, **overrides)


def cmd_data(args: argparse.Namespace) -> int:
    cfg = _config(args)  # before the heavy imports: a bad setting fails at once
    out = output_dir(args.out, "--out") if args.action == "preview" else None  # '' is not "here"
    from adafocus.data.synthetic import load_splits

    if args.action == "generate":
        splits = load_splits(cfg.data)
        for name, ds in splits.items():
            print(f"{name}: {len(ds)} clips of {tuple(ds.clips.videos.shape[1:])} (T, C, H, W)")
    else:
        from adafocus.data.preview import preview

        paths = preview(cfg.data, out)
        for kind, path in paths.items():
            print(f"{kind}: {path}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from adafocus.models.registry import list_models

    print("\n".join(list_models()))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from adafocus import distributed
    from adafocus.train import train

    cfg = _config(args)
    _check_model(args.model, cfg)  # before train() generates any data
    try:  # under torchrun every rank trains; rank 0 reports
        result = train(args.model, cfg, retrain=args.retrain)
        d = distributed.current()
        if d.is_main:
            cols = [c for c in ("stage", "epoch", "train_loss", "train_acc", "val_acc", "seconds")  # stage: V1
                    if c in result.history]
            print(result.history[cols].to_string(index=False))
            print(f"checkpoint: {result.checkpoint}{' (cached)' if result.from_cache else ''}"
                  f"{f' ({d.world_size} processes)' if d.enabled else ''}")
    finally:
        distributed.cleanup(distributed.current())
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    cfg = _config(args)
    from adafocus.evaluate import evaluate_model

    row = evaluate_model(args.model, cfg)
    print(json.dumps(row, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in row.items()))
    return 0


def cmd_flops(args: argparse.Namespace) -> int:
    overrides = _parse_overrides(args.set or [])
    if args.patch_size is not None:
        overrides["model.patch_size"] = args.patch_size
    cfg = get_config(args.preset, **overrides)
    from adafocus.flops import model_cost

    cost = model_cost(args.model, cfg)
    if args.json:
        print(json.dumps(cost, indent=2))
    else:
        scale, unit = (1, "GMACs") if cost["total_gmacs"] >= 1 else (1000, "MMACs")
        for name, g in {**cost["components"], "total": cost["total_gmacs"]}.items():
            print(f"{name:>24s}: {g * scale:10.4f} {unit}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from adafocus.benchmark import run_benchmark

    run_benchmark(args.preset, quick=args.quick, cached_only=args.cached_only)
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from adafocus.figures import make_figures

    for path in make_figures(args.preset):
        print(path)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from adafocus.demo import run_demo

    run_demo(args.preset)
    return 0


def _check_model(name: str, cfg) -> None:
    from adafocus.models.registry import model_config

    model_config(name, cfg)  # raises ConfigError naming the registered models


class _Parser(argparse.ArgumentParser):
    """Usage mistakes as one line on stderr (subcommands use this class too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m adafocus", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, preset: str = "small", recipe: bool = False) -> None:
        p.add_argument("--preset", default=preset, help=f"{' | '.join(PRESETS)} (default: %(default)s)")
        p.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                       help="override a config field, e.g. --set model.patch_size=32 (repeatable)")
        if recipe:
            p.add_argument("--recipe", default=None, help="the training signal: cpu (label-free, the default), "
                           "paper (the official implementation's, label-free) or hinted (an ablation: true "
                           "boxes and frames in the loss); the same as --set train.recipe=NAME")

    p = sub.add_parser("data", help="generate the synthetic benchmark or preview it")
    p.add_argument("action", choices=["generate", "preview"])
    p.add_argument("--out", default="figures/data_preview", help="preview output folder")
    common(p)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("models", help="list registered models")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a model (cached by config hash)")
    p.add_argument("--model", default="uni_adafocus")
    p.add_argument("--retrain", action="store_true", help="ignore a cached checkpoint")
    common(p, recipe=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a trained model on the test split")
    p.add_argument("--model", default="uni_adafocus")
    p.add_argument("--json", action="store_true")
    common(p, recipe=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("flops", help="MACs per component of a model")
    p.add_argument("--model", default="uni_adafocus")
    p.add_argument("--patch-size", type=int, default=None)
    p.add_argument("--json", action="store_true")
    common(p, preset="full")
    p.set_defaults(func=cmd_flops)

    p = sub.add_parser("bench", help="accuracy vs MACs of every method and budget")
    p.add_argument("--quick", action="store_true", help="fewer budgets")
    p.add_argument("--cached-only", action="store_true", help="evaluate only the models already trained")
    common(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("figures", help="regenerate every figure into figures/ (from cached models)")
    common(p)
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("demo", help="generate data, train, evaluate, write figures and tables")
    common(p)
    p.set_defaults(func=cmd_demo)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean a bad argument, a bad file, a bad setting or a run that cannot go on
    (a loss that diverged, memory that ran out), not a bug. A module that was never imported cannot
    have raised its error, so nothing is imported here."""
    errors: list[type[BaseException]] = [ConfigError, InputError, FloatingPointError]
    for module, name in (("adafocus.data.video", "VideoError"), ("adafocus.fit", "CheckpointError"),
                         ("adafocus.paths", "CorruptFileError")):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


def _out_of_memory(err: BaseException) -> bool:
    """A ``MemoryError``, or torch's allocation failure (a ``RuntimeError`` on CPU)."""
    if isinstance(err, MemoryError):
        return True
    oom = getattr(sys.modules.get("torch"), "OutOfMemoryError", None)  # (CUDA, a RuntimeError)
    if oom is not None and isinstance(err, oom):
        return True
    return isinstance(err, RuntimeError) and "can't allocate memory" in str(err)


def _one_line(message: str) -> str:
    """A message on one line: its lines joined (after a colon by a space, else by '; ')."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    out = lines[0] if lines else ""
    for ln in lines[1:]:
        out += (" " if out.endswith(":") else "; ") + ln
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as err:  # a user mistake: one line naming it, no traceback; anything else: a bug
        if isinstance(err, _user_errors()):
            message = str(err) or type(err).__name__
        elif _out_of_memory(err):
            detail = _one_line(str(err))[:300]
            message = (f"out of memory{f' ({detail})' if detail else ''}; expected settings that fit this "
                       "machine: lower train.batch_size, data.num_frames or data.frame_size")
        elif isinstance(err, OSError) and err.filename:  # e.g. an output or cache path that is a file
            message = f"{err.filename}: {err.strerror or err}"
        else:
            raise
        print(f"error: {_one_line(message)}", file=sys.stderr)
        return 2
