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
``adafocus_v1``               AdaFocus V1: a grid cell per step from a GRU policy trained by PPO (own class)
``uni_adafocus_tsm``          Uni-AdaFocus-TSM (:mod:`adafocus.models.tsm`, own class): temporal shift in
                              glance and focus, one box per clip, K of 3K candidate frames, logits summed
``uni_adafocus_tsn``          the same without the temporal shift (TSN-style: every frame alone)
``uni_adafocus_x3d``          Uni-AdaFocus-X3D (:mod:`adafocus.models.x3d`, own class): a 3-D glance, one box per
                              clip, a K x P x P space-time cube for a 3-D focus X3D (AdaFocus V3)
``x3d_full``                  the same focus X3D on whole frames (the full-clip baseline)
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
# The class each model is built with, as "module:Class" (imported when the model is created, so that
# registering a model never imports torch modules it does not need).
_CLASSES: dict[str, str] = {}
DEFAULT_CLASS = "adafocus.models.adafocus:UniAdaFocus"


def register_model(name: str, model_class: str = DEFAULT_CLASS) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: register ``builder(cfg) -> ModelConfig`` (the overrides of that variant) under ``name``.

    ``model_class`` ("module:Class") is built as ``Class(model_config, frame_size, num_frames, channels)``;
    every family member shares the :class:`~adafocus.models.adafocus.UniAdaFocus` interface
    (``plan`` / ``run`` / ``forward`` returning an ``AdaFocusOutput``).
    """
    def wrap(builder: ModelBuilder) -> ModelBuilder:
        if name in _REGISTRY:
            raise ValueError(f"register_model: {name!r} is already registered")
        _REGISTRY[name] = builder
        _CLASSES[name] = model_class
        return builder
    return wrap


def model_class(name: str) -> type[nn.Module]:
    """The class that :func:`create_model` builds model ``name`` with."""
    import importlib

    module, _, cls = _CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


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
    m = model_config(name, cfg)
    d = cfg.data
    return model_class(name)(m, d.frame_size, d.num_frames, d.channels)


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


# -- the TSM family member (adafocus.models.tsm) ----------------------------------------------------

TSM_CLASS = "adafocus.models.tsm:UniAdaFocusTSM"
TSM_CANDIDATES_PER_FOCUS = 3  # the official TSM variant picks K frames from 3K candidates


def _uni_adafocus_tsm_family(cfg: Config, shift: bool) -> ModelConfig:
    """One box per clip, K of ``focus_candidates`` frames (default 3K, at most T), glance + focus logits;
    ``shift``: the temporal shift in both networks (TSM) or in neither (TSN-style)."""
    m = cfg.model
    pool = m.focus_candidates or min(TSM_CANDIDATES_PER_FOCUS * m.num_focus, cfg.data.num_frames)
    return replace(_uni_adafocus(cfg), glance_tsm=shift, focus_tsm=shift, focus_candidates=pool)


@register_model("uni_adafocus_tsm", model_class=TSM_CLASS)
def _uni_adafocus_tsm(cfg: Config) -> ModelConfig:
    return _uni_adafocus_tsm_family(cfg, shift=True)


@register_model("uni_adafocus_tsn", model_class=TSM_CLASS)
def _uni_adafocus_tsn(cfg: Config) -> ModelConfig:
    """Uni-AdaFocus-TSM without its temporal shift: every frame alone (TSN-style), the same MACs."""
    return _uni_adafocus_tsm_family(cfg, shift=False)


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


# -- the family ---------------------------------------------------------------------------------

@register_model("adafocus_v1", model_class="adafocus.models.adafocus_v1:AdaFocusV1")
def _adafocus_v1(cfg: Config) -> ModelConfig:
    """AdaFocus V1: one glance and one P x P patch (a cell of a grid, chosen by a GRU policy trained with PPO) per
    step, at K uniform frames; a recurrent classifier (adafocus.models.adafocus_v1, adafocus.train_v1)."""
    P = cfg.model.patch_size
    return replace(cfg.model, spatial_policy=True, temporal_policy=False, use_glance=True, use_focus=True,
                   patch_mode="policy", frame_mode="uniform", glance_frames=cfg.model.num_focus, square_boxes=True,
                   box_min=P, box_max=P, exits=True, patch_grad=False, glance_jitter=False)


# -- the X3D family member (adafocus.models.x3d) --------------------------------------------------

X3D_CLASS = "adafocus.models.x3d:UniAdaFocusX3D"


@register_model("uni_adafocus_x3d", model_class=X3D_CLASS)
def _uni_adafocus_x3d(cfg: Config) -> ModelConfig:
    """A 3-D glance, one box per clip, a K x P x P space-time cube for a 3-D focus X3D, one prediction (no exits)."""
    return replace(_uni_adafocus(cfg), exits=False)


@register_model("x3d_full", model_class=X3D_CLASS)
def _x3d_full(cfg: Config) -> ModelConfig:
    """The full-clip X3D baseline: the same focus X3D on ``full_frame_frames`` uniform whole frames."""
    return _full_frames(cfg, cfg.data.frame_size, exits=False)
