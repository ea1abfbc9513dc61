"""Named models: Uni-AdaFocus, its special cases and the baselines, built from one :class:`Config`.

Every entry is the same :class:`~adafocus.models.adafocus.UniAdaFocus` class with different
switches, so comparisons differ only where they claim to:

============================  ===================================================================
``uni_adafocus``              glance + spatial policy (soft-argmax head) + temporal policy + exits
``uni_adafocus_paper_head``   the same with the paper's conv location head
``adafocus_v2``               square patches, uniform frames, no exits, gradients through the crop
``full_frame``                no glance; ``full_frame_frames`` uniform frames at full resolution
``lowres_full_frame``         the same frames, whole frame resized to ``P`` (same cost per frame as a patch)
``glance_only``               the glance network and its exits alone
``random_patch``              Uni-AdaFocus with random boxes instead of the spatial policy
``center_patch``              Uni-AdaFocus with the center box instead of the spatial policy
``oracle``                    true boxes (brought into [box_min, box_max]) at K truly informative frames
``temporal_only``             learned frames, whole frames at full resolution
``exits_only``                FrameExit-like: uniform full frames, no glance, an exit after every frame
============================  ===================================================================

>>> from adafocus.config import get_config
>>> model = create_model("adafocus_v2", get_config("tiny"))
>>> model.cfg.square_boxes, model.cfg.frame_mode, model.cfg.exits
(True, 'uniform', False)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from torch import nn

from adafocus.config import Config, ConfigError, ModelConfig

ModelBuilder = Callable[[Config], ModelConfig]
_REGISTRY: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: register ``builder(cfg) -> ModelConfig`` (the overrides of that variant) under ``name``."""
    def wrap(builder: ModelBuilder) -> ModelBuilder:
        if name in _REGISTRY:
            raise ValueError(f"register_model: {name!r} is already registered")
        _REGISTRY[name] = builder
        return builder
    return wrap


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, in registration order."""
    return list(_REGISTRY)


def model_config(name: str, cfg: Config) -> ModelConfig:
    """The :class:`ModelConfig` that model ``name`` uses under ``cfg`` (validated)."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ConfigError(f"model: expected one of the registered models: {', '.join(_REGISTRY)}; got {name!r}")
    if not isinstance(cfg, Config):
        raise ConfigError(f"cfg: expected an adafocus.config.Config (e.g. get_config('tiny')), got "
                          f"{type(cfg).__name__}{f' {cfg!r}' if isinstance(cfg, str) else ''}")
    m = _REGISTRY[name](cfg)
    m.validate()
    return m


def create_model(name: str, cfg: Config) -> nn.Module:
    """Build model ``name`` for the clips described by ``cfg.data``."""
    from adafocus.models.adafocus import UniAdaFocus

    m = model_config(name, cfg)
    d = cfg.data
    return UniAdaFocus(m, d.frame_size, d.num_frames, d.channels)


# -- Uni-AdaFocus and its special cases ---------------------------------------------------------

NO_POLICIES = dict(spatial_policy=False, temporal_policy=False)


@register_model("uni_adafocus")
def _uni_adafocus(cfg: Config) -> ModelConfig:
    return replace(cfg.model, location_head="softargmax", spatial_policy=True, temporal_policy=True,
                   use_glance=True, use_focus=True, patch_mode="policy", frame_mode="policy")


@register_model("uni_adafocus_paper_head")
def _uni_adafocus_paper_head(cfg: Config) -> ModelConfig:
    return replace(_uni_adafocus(cfg), location_head="conv")


@register_model("adafocus_v2")
def _adafocus_v2(cfg: Config) -> ModelConfig:
    """Square patches from the spatial policy, uniform frames, one head, end to end through the crop."""
    return replace(_uni_adafocus(cfg), square_boxes=True, temporal_policy=False, frame_mode="uniform",
                   exits=False, patch_grad=True)


# -- baselines ------------------------------------------------------------------------------------

def _full_frames(cfg: Config, patch_size: int, exits: bool) -> ModelConfig:
    return replace(cfg.model, **NO_POLICIES, use_glance=False, use_focus=True, patch_mode="full",
                   frame_mode="uniform", num_focus=cfg.model.full_frame_frames, patch_size=patch_size, exits=exits)


@register_model("full_frame")
def _full_frame(cfg: Config) -> ModelConfig:
    return _full_frames(cfg, cfg.data.frame_size, exits=False)


@register_model("lowres_full_frame")
def _lowres_full_frame(cfg: Config) -> ModelConfig:
    return _full_frames(cfg, cfg.model.patch_size, exits=False)


@register_model("glance_only")
def _glance_only(cfg: Config) -> ModelConfig:
    return replace(cfg.model, **NO_POLICIES, use_glance=True, use_focus=False, patch_mode="full",
                   frame_mode="uniform")


@register_model("random_patch")
def _random_patch(cfg: Config) -> ModelConfig:
    return replace(_uni_adafocus(cfg), spatial_policy=False, patch_mode="random")


@register_model("center_patch")
def _center_patch(cfg: Config) -> ModelConfig:
    return replace(_uni_adafocus(cfg), spatial_policy=False, patch_mode="center")


@register_model("oracle")
def _oracle(cfg: Config) -> ModelConfig:
    """The upper bound of any patch policy at the same cost (needs ground truth: synthetic data)."""
    return replace(cfg.model, **NO_POLICIES, use_glance=True, use_focus=True, patch_mode="oracle",
                   frame_mode="oracle")


@register_model("temporal_only")
def _temporal_only(cfg: Config) -> ModelConfig:
    return replace(_uni_adafocus(cfg), spatial_policy=False, patch_mode="full", patch_size=cfg.data.frame_size)


@register_model("exits_only")
def _exits_only(cfg: Config) -> ModelConfig:
    return _full_frames(cfg, cfg.data.frame_size, exits=True)
