"""Typed configuration: one dataclass per concern, named presets, validation with clear messages.

A :class:`Config` bundles :class:`DataConfig` (the synthetic benchmark or a video folder),
:class:`ModelConfig` (glance, policies, focus, classifier), :class:`TrainConfig` (one stage of
end-to-end training, its signal named by ``train.recipe``) and :class:`PretrainConfig` (the shared
pretraining on an object-centric image set). Presets (see docs/design.md, "CPU geometry"):

- ``tiny``  for unit tests (trains in seconds),
- ``fast``  the notebooks' FAST mode, what CI runs (the tiny geometry, a longer toy schedule),
- ``small`` for the demo and the benchmark (one model in a few minutes on 2 CPU cores),
- ``full``  the paper's sizes (224² frames, MobileNetV2-1.0 glance, ResNet-50 focus, 200
  classes) for cost counting and shape tests, not for CPU training.

Every field is validated by :meth:`Config.validate` (called by :func:`get_config`); an impossible
value raises :class:`ConfigError` naming the field and what was expected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from adafocus.checks import is_int, is_number


class ConfigError(ValueError):
    """An impossible configuration value. The message names the field and what was expected."""


def _check(cond: bool, name: str, expected: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"{name}: expected {expected}, got {value!r}")


def _check_types(section: Any, prefix: str) -> None:
    """Every field must have its default's type: an int, a finite number, a bool, a string, or a
    tuple (or list) of ints / finite numbers. Checked first, so that ``patch_size="big"`` or
    ``lr=nan`` get a message naming the field rather than a comparison error."""
    for f in fields(section):
        value, default, name = getattr(section, f.name), f.default, f"{prefix}.{f.name}"
        if isinstance(default, bool):
            _check(isinstance(value, bool), name, "True or False", value)
        elif isinstance(default, int):
            _check(is_int(value), name, "an int", value)
        elif isinstance(default, float):
            _check(is_number(value), name, "a finite number", value)
        elif isinstance(default, str):
            _check(isinstance(value, str), name, "a string", value)
        elif isinstance(default, tuple):
            ok, items = (is_int, "ints") if all(is_int(v) for v in default) else (is_number, "finite numbers")
            _check(isinstance(value, (tuple, list)) and all(ok(v) for v in value), name, f"a tuple of {items}", value)


# field metadata: a knob added after caches existed. It is left out of every cache key while it has its
# default value, so adding it kept the keys (and the cached data and checkpoints) of every existing config;
# any other value is hashed like an ordinary field.
HASHED_IF_SET = {"hashed": "if_set"}
MOTIONS = ("none", "direction")  # DataConfig.motion


@dataclass(frozen=True)
class DataConfig:
    """The synthetic benchmark's knobs (docs/design.md, "The synthetic benchmark") and the clip geometry.

    Clips are ``(T, C, H, W)`` with ``T = num_frames`` and ``H = W = frame_size``.
    """

    num_classes: int = 10  # digits 0-9 (sklearn's load_digits)
    num_frames: int = 16  # T
    frame_size: int = 64  # H = W in pixels
    channels: int = 3  # RGB
    num_train: int = 4000
    num_val: int = 500
    num_test: int = 1000
    object_scale: tuple[float, float] = (0.20, 0.26)  # object side as a fraction of the frame
    informative_fraction: float = 0.5  # fraction of frames in which the object is visible
    clutter: float = 0.6  # 0 = plain background, 1 = heavy clutter and distractors
    speed: float = 1.5  # mean object speed in pixels per frame
    seed: int = 0  # fixes every split byte for byte
    # what the class is: "none" = the digit (the default benchmark); "direction" = the digit and the direction
    # of its straight-line motion, label = 2 * digit + (1 if it moves backwards): a clip of label 2d + 1 is the
    # clip of label 2d played backwards, so a frame-order-blind model cannot tell the two apart (docs/design.md,
    # "The synthetic benchmark")
    motion: str = field(default="none", metadata=HASHED_IF_SET)

    max_speed_jitter = 1.3  # the largest per-clip speed factor (synthetic.RenderParams.speed_jitter[1])

    def validate(self, prefix: str = "data") -> None:
        p = prefix
        _check_types(self, p)
        _check(2 <= self.num_classes <= 10, f"{p}.num_classes", "an int in [2, 10]", self.num_classes)
        _check(self.num_frames >= 2, f"{p}.num_frames", "an int >= 2", self.num_frames)
        _check(self.frame_size >= 16, f"{p}.frame_size", "an int >= 16 pixels", self.frame_size)
        _check(self.channels in (1, 3), f"{p}.channels", "1 or 3", self.channels)
        for split in ("num_train", "num_val", "num_test"):
            v = getattr(self, split)
            _check(isinstance(v, int) and v >= 0, f"{p}.{split}", "a non-negative int", v)
        _check(len(self.object_scale) == 2, f"{p}.object_scale", "a (lo, hi) pair", tuple(self.object_scale))
        lo, hi = self.object_scale
        _check(0.05 <= lo <= hi <= 0.9, f"{p}.object_scale", "(lo, hi) with 0.05 <= lo <= hi <= 0.9",
               self.object_scale)
        _check(0.0 < self.informative_fraction <= 1.0, f"{p}.informative_fraction", "a float in (0, 1]",
               self.informative_fraction)
        _check(0.0 <= self.clutter <= 1.0, f"{p}.clutter", "a float in [0, 1]", self.clutter)
        _check(0.0 <= self.speed <= self.frame_size / 4, f"{p}.speed",
               f"a float in [0, frame_size/4 = {self.frame_size / 4}] pixels per frame", self.speed)
        _check(0 <= self.seed < 2**63, f"{p}.seed", "a non-negative int below 2**63", self.seed)
        _check(self.motion in MOTIONS, f"{p}.motion", f"one of {MOTIONS}", self.motion)
        if self.motion == "direction":
            _check(self.num_classes % 2 == 0, f"{p}.num_classes",
                   f"an even number with {p}.motion='direction' (2 directions per digit)", self.num_classes)
            reach = self.speed * self.max_speed_jitter * (self.num_frames - 1)  # the longest straight path
            room = self.frame_size * (1 - self.object_scale[1])
            _check(0 < self.speed and reach <= room, f"{p}.speed",
                   f"a positive speed whose straight path fits the frame with {p}.motion='direction' "
                   f"(speed x {self.max_speed_jitter} x (num_frames - 1) <= frame_size x (1 - object_scale[1]) "
                   f"= {room:g} px)", self.speed)
        # sizes: what must be allocated has to fit this machine's memory (checked now, not after a
        # MemoryError from an allocation of terabytes)
        from adafocus.checks import format_bytes, total_memory_bytes

        memory = total_memory_bytes()
        if memory is None:
            return
        T, C, S = self.num_frames, self.channels, self.frame_size
        clip = T * C * S * S * 4  # one clip as the model sees it: float32 (T, C, S, S)
        if clip > memory // 4:  # the network's activations take several times its input
            raise ConfigError(
                f"{p}.num_frames x {p}.channels x {p}.frame_size²: expected a float32 clip that fits in a quarter "
                f"of this machine's memory ({format_bytes(memory)}), got {T} x {C} x {S}² = {T * C * S * S:,} "
                f"values ({format_bytes(clip)}); lower {p}.num_frames ({T}) or {p}.frame_size ({S})")
        split = max(self.num_train, self.num_val, self.num_test)
        if split * clip // 4 > memory // 2:  # a split is generated in memory (uint8) before it is cached
            name = max(("num_train", "num_val", "num_test"), key=lambda k: getattr(self, k))
            raise ConfigError(
                f"{p}.{name}: expected a split whose uint8 clips fit in half of this machine's memory "
                f"({format_bytes(memory)}), got {split:,} clips of {format_bytes(clip // 4)} = "
                f"{format_bytes(split * clip // 4)}; lower {p}.{name}, {p}.num_frames or {p}.frame_size")


PATCH_MODES = ("policy", "random", "center", "oracle", "full")
FRAME_MODES = ("policy", "uniform", "oracle")
GLANCE_POOLS = ("max", "avg")
X3D_SIZES = ("XS", "S", "M", "L", "cpu")  # named X3D networks (adafocus.models.x3d.X3D_SIZES)
OPTIMIZERS = ("adamw", "sgd")
BACKBONE = {"backbone": True}  # field metadata: the shared pretraining depends on this field
NOT_HASHED = {"hashed": False}  # field metadata: the field cannot change a result, so cache keys ignore it


@dataclass(frozen=True)
class PretrainConfig:
    """The shared pretraining: the workbench's stand-in for ImageNet weights (:mod:`adafocus.pretrain`).

    A generated set of object-centric *images* (one digit over clutter, class labels only, digit
    instances of the training fold only: none of the video test split's handwriting) on which the
    glance and focus backbones learn what the classes look like before any video is seen. The glance
    sees each image at the pixel scale it sees video frames; the focus sees random resized crops of
    it at ``crop_size``. Trained once per geometry, cached, copied into every method.
    """

    images: int = 10000  # images in the set
    image_size: int = 32  # side of an image in pixels of the video frame
    object_scale: tuple[float, float] = (0.4, 0.85)  # digit side as a fraction of the image: object-centric
    crop_size: int = 24  # the focus network's input side in pretraining (fine-tuned later at model.patch_size)
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0  # the image set's and the training run's seed

    def validate(self, prefix: str = "pretrain") -> None:
        p = prefix
        _check_types(self, p)
        _check(0 <= self.images <= 1_000_000, f"{p}.images", "an int in [0, 1000000]", self.images)
        _check(8 <= self.image_size <= 1024, f"{p}.image_size", "an int in [8, 1024] pixels", self.image_size)
        _check(len(self.object_scale) == 2, f"{p}.object_scale", "a (lo, hi) pair", tuple(self.object_scale))
        lo, hi = self.object_scale
        _check(0.05 <= lo <= hi <= 0.9, f"{p}.object_scale", "(lo, hi) with 0.05 <= lo <= hi <= 0.9",
               self.object_scale)
        _check(8 <= self.crop_size <= 1024, f"{p}.crop_size", "an int in [8, 1024] pixels", self.crop_size)
        _check(0 <= self.epochs <= 100_000, f"{p}.epochs", "a non-negative int <= 100000", self.epochs)
        _check(1 <= self.batch_size <= 1 << 16, f"{p}.batch_size", f"an int in [1, {1 << 16}]", self.batch_size)
        _check(0 < self.lr <= 10, f"{p}.lr", "a positive float <= 10", self.lr)
        _check(0 <= self.seed < 2**32, f"{p}.seed", "a non-negative int below 2**32", self.seed)


@dataclass(frozen=True)
class ModelConfig:
    """Uni-AdaFocus geometry (docs/design.md, "The method" and "CPU geometry").

    Glance: a narrow MobileNetV2 on ``glance_frames`` frames resized to ``glance_size``², cut at
    output stride ``glance_stride`` (a ``glance_size / glance_stride`` square map for the spatial
    policy). Focus: a ResNet on ``num_focus`` (K) patches of ``patch_size`` (P) pixels, cropped
    from boxes whose side lies in ``[box_min, box_max]`` pixels of the full frame. Fields marked
    ``BACKBONE`` shape the pretrained backbones (see :func:`backbone_fields`).
    """

    # glance network (cheap, full view)
    glance_width: float = field(default=0.25, metadata=BACKBONE)  # MobileNetV2 width multiplier
    glance_size: int = field(default=32, metadata=BACKBONE)  # frames are resized to glance_size² for the glance
    glance_frames: int = 8  # T_g, one per segment of the clip
    glance_stride: int = field(default=4, metadata=BACKBONE)  # 32 = the whole MobileNetV2; 4/8/16 = cut there
    glance_feature_dim: int = field(default=64, metadata=BACKBONE)  # 1x1 conv to this width; 0 = the backbone's
    glance_pool: str = field(default="max", metadata=BACKBONE)  # frame feature: "max" or "avg" (paper) pooling
    glance_jitter: bool = False  # training: each glance frame at a random offset in its segment (paper: on)
    # focus network (expensive, on patches)
    focus_block: str = field(default="basic", metadata=BACKBONE)  # "basic" (ResNet-18/34) or "bottleneck"
    focus_layers: tuple[int, ...] = field(default=(1, 1, 1, 1), metadata=BACKBONE)
    focus_widths: tuple[int, ...] = field(default=(16, 32, 64, 128), metadata=BACKBONE)
    focus_stem_stride: int = field(default=2, metadata=BACKBONE)  # 4 = conv stride 2 + maxpool; 2 = conv only
    focus_tsm: bool = field(default=False, metadata=BACKBONE)  # temporal shift in the focus network
    glance_tsm: bool = field(default=False, metadata=HASHED_IF_SET)  # temporal shift in the glance network
    # the temporal policy picks the K focus frames among this many candidates (one per segment of the clip:
    # the official TSM variant's 3K); 0 = among all T frames
    focus_candidates: int = field(default=0, metadata=HASHED_IF_SET)
    # the X3D family member (adafocus.models.x3d): the named X3D sizes of its 3-D glance and focus networks
    glance_x3d: str = field(default="cpu", metadata=HASHED_IF_SET)
    focus_x3d: str = field(default="cpu", metadata=HASHED_IF_SET)
    # spatial policy
    patch_size: int = 24  # P: every box is resampled to P x P
    box_min: int = 16  # smallest box side in pixels of the full frame
    box_max: int = 32  # largest box side
    square_boxes: bool = False  # AdaFocusV2 uses squares; Uni-AdaFocus may use rectangles
    location_head: str = "softargmax"  # "softargmax" (CPU default) or "conv" (the paper's)
    policy_channels: int = 16  # width of the spatial policy's 3-D convs
    policy_separable: bool = True  # depthwise-separable 3x3x3 convs (CPU: a fifth of the MACs); False: the paper's
    # temporal policy and focus frames
    num_focus: int = 4  # K focus frames out of T
    temporal_channels: int = 16
    # classifier with exits
    hidden_dim: int = 256  # per-step MLP output width
    num_classes: int = field(default=10, metadata=BACKBONE)
    # switches (see models.registry for the named variants)
    spatial_policy: bool = True  # build the spatial policy network
    temporal_policy: bool = True  # build the temporal policy network
    exits: bool = True  # an exit after every step (False: one head at the end)
    use_glance: bool = True  # False: no glance network (full-frame baselines, FrameExit-like)
    use_focus: bool = True  # False: no focus network (the glance-only baseline)
    patch_mode: str = "policy"  # where patches come from: policy | random | center | oracle | full
    frame_mode: str = "policy"  # which frames are focused on: policy | uniform | oracle
    full_frame_frames: int = 8  # frames seen by the full-frame baselines
    surrogate_size: int = 3  # the spatial surrogate samples a surrogate_size² grid of the glance map per box
    # training signal carried by the forward pass (set by train.recipe; see RECIPES)
    patch_grad: bool = False  # gradients through the pixel crop into the boxes (AdaFocusV2's; the paper's Uni: off)
    policy_trains_glance: bool = False  # the spatial surrogate's gradients also reach the glance (paper: detached)
    oracle_jitter: bool = True  # oracle patches in training: random boxes that contain the true one
    channels_last: bool = field(default=True, metadata=BACKBONE)  # 2-D convs in channels_last memory format

    def validate(self, data: DataConfig | None = None, prefix: str = "model") -> None:
        p = prefix
        _check_types(self, p)
        _check(self.glance_width > 0, f"{p}.glance_width", "a positive float", self.glance_width)
        _check(self.glance_size >= 8, f"{p}.glance_size", "an int >= 8", self.glance_size)
        _check(self.glance_frames >= 1, f"{p}.glance_frames", "an int >= 1", self.glance_frames)
        _check(self.glance_pool in GLANCE_POOLS, f"{p}.glance_pool", f"one of {GLANCE_POOLS}", self.glance_pool)
        _check(self.focus_block in ("basic", "bottleneck"), f"{p}.focus_block", "'basic' or 'bottleneck'",
               self.focus_block)
        _check(len(self.focus_layers) == len(self.focus_widths) and len(self.focus_layers) >= 1,
               f"{p}.focus_layers", "as many stages as focus_widths", self.focus_layers)
        _check(all(n >= 1 for n in self.focus_layers), f"{p}.focus_layers", "blocks per stage >= 1",
               self.focus_layers)
        _check(all(n >= 1 for n in self.focus_widths), f"{p}.focus_widths", "channels per stage >= 1",
               self.focus_widths)
        _check(self.focus_stem_stride in (1, 2, 4), f"{p}.focus_stem_stride", "1, 2 or 4", self.focus_stem_stride)
        _check(self.patch_size >= 8, f"{p}.patch_size", "an int >= 8", self.patch_size)
        _check(1 <= self.box_min <= self.box_max, f"{p}.box_min",
               f"an int in [1, box_max={self.box_max}]", self.box_min)
        _check(self.location_head in ("softargmax", "conv"), f"{p}.location_head", "'softargmax' or 'conv'",
               self.location_head)
        _check(self.num_focus >= 1, f"{p}.num_focus", "an int >= 1", self.num_focus)
        _check(self.focus_candidates == 0 or self.focus_candidates >= self.num_focus, f"{p}.focus_candidates",
               f"0 (every frame) or a pool of at least K = model.num_focus = {self.num_focus} candidate frames",
               self.focus_candidates)
        for name in ("glance_x3d", "focus_x3d"):
            _check(getattr(self, name) in X3D_SIZES, f"{p}.{name}", f"one of {X3D_SIZES}", getattr(self, name))
        _check(self.policy_channels >= 1, f"{p}.policy_channels", "an int >= 1", self.policy_channels)
        _check(self.temporal_channels >= 1, f"{p}.temporal_channels", "an int >= 1", self.temporal_channels)
        _check(self.hidden_dim >= 1, f"{p}.hidden_dim", "an int >= 1", self.hidden_dim)
        _check(self.num_classes >= 2, f"{p}.num_classes", "an int >= 2", self.num_classes)
        _check(self.glance_stride in (2, 4, 8, 16, 32), f"{p}.glance_stride", "2, 4, 8, 16 or 32",
               self.glance_stride)
        _check(self.glance_feature_dim >= 0, f"{p}.glance_feature_dim", "an int >= 0 (0 = the backbone's own)",
               self.glance_feature_dim)
        _check(self.patch_mode in PATCH_MODES, f"{p}.patch_mode", f"one of {PATCH_MODES}", self.patch_mode)
        _check(self.frame_mode in FRAME_MODES, f"{p}.frame_mode", f"one of {FRAME_MODES}", self.frame_mode)
        _check(self.use_glance or self.use_focus, f"{p}.use_focus", "True when use_glance is False", self.use_focus)
        _check(self.use_glance or not (self.spatial_policy or self.temporal_policy), f"{p}.use_glance",
               "True when a policy is on (the policies read the glance)", self.use_glance)
        _check(self.patch_mode != "policy" or self.spatial_policy or not self.use_focus, f"{p}.patch_mode",
               "not 'policy' when spatial_policy is False", self.patch_mode)
        _check(self.frame_mode != "policy" or self.temporal_policy or not self.use_focus, f"{p}.frame_mode",
               "not 'policy' when temporal_policy is False", self.frame_mode)
        _check(self.full_frame_frames >= 1, f"{p}.full_frame_frames", "an int >= 1", self.full_frame_frames)
        _check(self.surrogate_size >= 1, f"{p}.surrogate_size", "an int >= 1", self.surrogate_size)
        # upper bounds: far beyond the paper's sizes (ResNet-50, 4096-d classifier, 224² frames, 200
        # classes), where building the networks would exhaust any machine's memory
        widest, largest = 1 << 16, 4096
        for name in ("policy_channels", "temporal_channels", "hidden_dim", "glance_feature_dim"):
            v = getattr(self, name)
            _check(v <= widest, f"{p}.{name}", f"an int <= {widest}", v)
        _check(max(self.focus_widths) <= widest, f"{p}.focus_widths", f"channels per stage <= {widest}",
               self.focus_widths)
        _check(max(self.focus_layers) <= 256, f"{p}.focus_layers", "blocks per stage <= 256", self.focus_layers)
        _check(self.glance_width <= 8, f"{p}.glance_width", "a positive float <= 8 (MobileNetV2's width multiplier)",
               self.glance_width)
        _check(self.num_classes <= 1_000_000, f"{p}.num_classes", "an int <= 1000000", self.num_classes)
        for name in ("patch_size", "glance_size", "box_max", "num_focus", "glance_frames", "full_frame_frames",
                     "focus_candidates"):
            v = getattr(self, name)
            _check(v <= largest, f"{p}.{name}", f"an int <= {largest}", v)
        _check(self.surrogate_size <= 64, f"{p}.surrogate_size", "an int <= 64", self.surrogate_size)
        if data is not None:
            T, S = data.num_frames, data.frame_size
            _check(self.num_focus <= T, f"{p}.num_focus", f"K <= the clip's T = {T} frames", self.num_focus)
            _check(self.focus_candidates <= T, f"{p}.focus_candidates",
                   f"a candidate pool no larger than the clip's T = {T} frames", self.focus_candidates)
            _check(self.glance_frames <= T, f"{p}.glance_frames", f"<= the clip's T = {T} frames",
                   self.glance_frames)
            _check(self.patch_size <= S, f"{p}.patch_size",
                   f"a patch no larger than the {S}x{S} frame", self.patch_size)
            _check(self.box_max <= S, f"{p}.box_max", f"a box side no larger than the frame ({S} px)",
                   self.box_max)
            _check(self.glance_size <= S, f"{p}.glance_size", f"<= frame_size = {S}", self.glance_size)
            _check(self.full_frame_frames <= T, f"{p}.full_frame_frames", f"<= the clip's T = {T} frames",
                   self.full_frame_frames)
            _check(self.num_classes == data.num_classes, f"{p}.num_classes",
                   f"the data's number of classes ({data.num_classes})", self.num_classes)


@dataclass(frozen=True)
class TrainConfig:
    """One stage of end-to-end training from the pretrained backbones (docs/design.md, "Training").

    ``recipe`` names the training signal (:data:`RECIPES`): ``cpu`` (the default: label-free, with
    CPU departures), ``paper`` (the official implementation's signal) or ``hinted`` (an ablation that
    supervises the policies with the synthetic ground truth). Setting it sets the fields it lists;
    single switches can be overridden after it.
    """

    recipe: str = "cpu"
    batch_size: int = 32
    epochs: int = 8
    optimizer: str = "adamw"  # "adamw" or "sgd" (momentum 0.9, Nesterov)
    lr: float = 3e-3
    weight_decay: float = 1e-4
    # per-part LR multipliers (the paper: policy 0.2, glance 0.5, focus 1, classifier 20 with SGD)
    lr_policy: float = 1.0
    lr_glance: float = 0.5
    lr_focus: float = 1.0
    lr_classifier: float = 1.0
    # the label-free signal: surrogate losses (weights), the scale regulariser, the random-patch branch
    spatial_weight: float = 1.0  # cross-entropy of the spatial surrogate (glance map cropped at the live box)
    temporal_weight: float = 1.0  # cross-entropy of the temporal surrogate (w-weighted glance logits)
    temporal_draws: int = 128  # Monte Carlo draws of the temporal surrogate
    scale_reg: float = 0.0  # weight of mean((scale - 1)²): pulls boxes towards the largest size (paper: 1)
    random_branch: bool = True  # average with a random-patch branch (same frames, random positions)
    # hints: ground truth into the policies' losses (synthetic data only; recipe "hinted", an ablation)
    center_supervision: float = 0.0  # L1 from the box centers to the true ones (frame units)
    temporal_supervision: float = 0.0  # KL from the true informative-frame mask to w
    grad_clip: float = 5.0
    seed: int = 0
    num_threads: int = 1  # 1 per process: two trainings side by side beat one on 2 threads
    max_minutes: float = 0.0  # 0 = no limit; otherwise stop (and checkpoint) after this wall time
    # record boxes and w on this many fixed validation clips before and after every epoch (for the "learning to
    # look" figure; it runs in eval mode on its own random stream, so it never changes the training: not hashed)
    record_policy: int = field(default=8, metadata=NOT_HASHED)

    @property
    def uses_ground_truth(self) -> bool:
        """Whether the loss reads true boxes or masks (the ``hinted`` ablation)."""
        return self.center_supervision > 0 or self.temporal_supervision > 0

    def validate(self, prefix: str = "train") -> None:
        p = prefix
        _check_types(self, p)
        _check(self.recipe in RECIPES, f"{p}.recipe", f"one of {sorted(RECIPES)}", self.recipe)
        _check(1 <= self.batch_size <= 1 << 16, f"{p}.batch_size", f"an int >= 1 and <= {1 << 16}", self.batch_size)
        _check(0 <= self.epochs <= 100_000, f"{p}.epochs", "a non-negative int <= 100000", self.epochs)
        _check(self.optimizer in OPTIMIZERS, f"{p}.optimizer", "'adamw' or 'sgd'", self.optimizer)
        # sane ranges: beyond them training overflows (lr=1e300 inside the optimiser) or diverges at once
        _check(0 < self.lr <= 10, f"{p}.lr", "a positive float <= 10", self.lr)
        for name in ("lr_policy", "lr_glance", "lr_focus", "lr_classifier"):  # the paper's largest: 20
            v = getattr(self, name)
            _check(0 <= v <= 1000, f"{p}.{name}", "a non-negative float <= 1000 (a multiplier of train.lr)", v)
        for name in ("spatial_weight", "temporal_weight", "scale_reg", "center_supervision",
                     "temporal_supervision"):  # loss weights
            v = getattr(self, name)
            _check(0 <= v <= 1e6, f"{p}.{name}", "a non-negative float <= 1e6", v)
        _check(1 <= self.temporal_draws <= 1024, f"{p}.temporal_draws", "an int in [1, 1024]", self.temporal_draws)
        _check(0 <= self.weight_decay <= 1, f"{p}.weight_decay", "a non-negative float <= 1", self.weight_decay)
        _check(self.grad_clip >= 0, f"{p}.grad_clip", "a non-negative float (0 = no clipping)", self.grad_clip)
        _check(self.max_minutes >= 0, f"{p}.max_minutes", "a non-negative float (0 = no limit)", self.max_minutes)
        _check(1 <= self.num_threads <= 1024, f"{p}.num_threads", "an int >= 1 and <= 1024", self.num_threads)
        _check(0 <= self.seed < 2**32, f"{p}.seed", "a non-negative int below 2**32", self.seed)
        _check(0 <= self.record_policy <= 64, f"{p}.record_policy", "an int in [0, 64]", self.record_policy)


# ---------------------------------------------------------------------------------------------
# recipes: the training signal, one switch
# ---------------------------------------------------------------------------------------------

# Every recipe sets the same fields, so switching from one to another never keeps a leftover.
RECIPES: dict[str, dict[str, Any]] = {
    # The official implementation's signal, item by item: real patches cropped with detached boxes
    # (patch_grad off), the spatial surrogate crops the *detached* glance map (policy_trains_glance
    # off), the scale regulariser at weight 1, glance frames at random offsets in training, the
    # temporal surrogate on the glance's per-frame logits with 128 draws, every term weighted 1 and
    # averaged over a policy branch and a random-patch branch, SGD (cosine) with the per-part learning
    # rate multipliers policy 0.2, glance 0.5, focus 1, classifier 20.
    "paper": {"model.patch_grad": False, "model.policy_trains_glance": False, "model.glance_jitter": True,
              "train.optimizer": "sgd", "train.lr": 0.01, "train.lr_policy": 0.2, "train.lr_glance": 0.5,
              "train.lr_focus": 1.0, "train.lr_classifier": 20.0, "train.spatial_weight": 1.0,
              "train.temporal_weight": 1.0, "train.temporal_draws": 128, "train.scale_reg": 1.0,
              "train.random_branch": True, "train.center_supervision": 0.0, "train.temporal_supervision": 0.0},
    # Label-free, as the paper, with the departures CPU budgets needed (each measured: docs/design.md,
    # "Departures", benchmarks/departures.py): AdamW at one learning rate for every part but the glance, the
    # scale regulariser at 0.1, and the classifier's gradients through the pixel crop into the boxes
    # (AdaFocusV2's end-to-end crop, on top of the surrogates).
    "cpu": {"model.patch_grad": True, "model.policy_trains_glance": False, "model.glance_jitter": True,
            "train.optimizer": "adamw", "train.lr": 3e-3, "train.lr_policy": 1.0, "train.lr_glance": 0.5,
            "train.lr_focus": 1.0, "train.lr_classifier": 1.0, "train.spatial_weight": 1.0,
            "train.temporal_weight": 1.0, "train.temporal_draws": 128, "train.scale_reg": 0.1,
            "train.random_branch": True, "train.center_supervision": 0.0, "train.temporal_supervision": 0.0},
    # An ABLATION, never a default: the cpu recipe plus ground truth in the policies' losses (an L1 on the
    # true box center, a KL towards the true informative-frame mask): what the surrogates could at best learn.
    "hinted": {},  # filled below: cpu + hints
}
RECIPES["hinted"] = {**RECIPES["cpu"], "train.center_supervision": 30.0, "train.temporal_supervision": 1.0}


def recipe_overrides(name: str) -> dict[str, Any]:
    """The dotted overrides that recipe ``name`` sets (a ConfigError listing the valid names otherwise)."""
    if not isinstance(name, str) or name not in RECIPES:
        raise ConfigError(f"train.recipe: expected one of {sorted(RECIPES)}, got {name!r}")
    return dict(RECIPES[name])


@dataclass(frozen=True)
class Config:
    """Everything needed to build data, a model and a training run."""

    name: str = "small"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    def validate(self) -> "Config":
        self.data.validate()
        self.model.validate(self.data)
        self.train.validate()
        self.pretrain.validate()
        from adafocus.checks import format_bytes, total_memory_bytes

        memory = total_memory_bytes()
        d, b = self.data, self.train.batch_size
        batch = b * d.num_frames * d.channels * d.frame_size ** 2 * 4  # one float32 input batch
        if memory is not None and batch > memory // 4:  # activations take several times the input
            raise ConfigError(
                f"train.batch_size: expected a batch of float32 clips that fits in a quarter of this machine's "
                f"memory ({format_bytes(memory)}), got {b} clips of {d.num_frames} x {d.channels} x "
                f"{d.frame_size}² = {format_bytes(batch)}; lower train.batch_size")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self, *parts: str) -> str:
        """A short stable hash of the given sections (default: all), for cache keys. Fields marked
        ``NOT_HASHED`` (they cannot change a result) are left out, and so are fields marked
        ``HASHED_IF_SET`` while they have their default value (see :func:`hashed_fields`)."""
        d = self.to_dict()
        d.pop("name")
        for section in fields(self):
            if section.name in d:
                d[section.name] = hashed_fields(getattr(self, section.name))
        if parts:
            d = {k: d[k] for k in parts}
        blob = json.dumps(d, sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def replace(self, **overrides: Any) -> "Config":
        """Dotted overrides: ``cfg.replace(**{"model.patch_size": 32, "train.lr": 1e-3})``."""
        return apply_overrides(self, overrides)


def hashed_fields(section: Any) -> dict[str, Any]:
    """``dataclasses.asdict(section)`` without the fields that cache keys leave out: ``NOT_HASHED`` ones, and
    ``HASHED_IF_SET`` ones at their default value (knobs added later: existing keys stay as they were)."""
    d = dataclasses.asdict(section)
    for f in fields(section):
        hashed = f.metadata.get("hashed", True)
        if hashed is False or (hashed == "if_set" and getattr(section, f.name) == f.default):
            d.pop(f.name)
    return d


def backbone_fields() -> tuple[str, ...]:
    """The :class:`ModelConfig` fields that shape the pretrained backbones (marked ``BACKBONE``)."""
    return tuple(f.name for f in fields(ModelConfig) if f.metadata.get("backbone"))


# ---------------------------------------------------------------------------------------------
# presets
# ---------------------------------------------------------------------------------------------

def _tiny() -> Config:
    """Unit tests: a few seconds per model."""
    data = DataConfig(num_classes=4, num_frames=8, frame_size=32, num_train=192, num_val=64, num_test=64,
                      object_scale=(0.3, 0.4), speed=1.0)
    model = ModelConfig(glance_width=0.25, glance_size=16, glance_frames=8, glance_feature_dim=32,
                        focus_widths=(8, 16, 16, 32), full_frame_frames=4,
                        patch_size=16, box_min=10, box_max=20, num_focus=3, policy_channels=8,
                        temporal_channels=8, hidden_dim=32, num_classes=4)
    pretrain = PretrainConfig(images=512, image_size=16, crop_size=16, epochs=1, batch_size=32)
    return _with_recipe(Config("tiny", data, model, TrainConfig(), pretrain),
                        **{"train.batch_size": 32, "train.epochs": 1})


def _fast() -> Config:
    """The notebooks' FAST mode (what CI runs): the tiny geometry, more clips and epochs, seconds per model."""
    tiny = _tiny()
    return replace(tiny, name="fast", data=replace(tiny.data, num_train=512, num_test=128),
                   model=replace(tiny.model, glance_size=32),  # full resolution: at 16² the glance saw 5-px digits
                   train=replace(tiny.train, batch_size=16, epochs=6),
                   pretrain=replace(tiny.pretrain, images=2000, epochs=8, lr=1e-2))


def _small() -> Config:
    """The demo and the benchmark: one model in a few minutes on 2 CPU cores."""
    return _with_recipe(Config("small", DataConfig(), ModelConfig(), TrainConfig(), PretrainConfig()))


def _small_motion() -> Config:
    """The small geometry on the motion-dependent benchmark (``data.motion="direction"``: the class is the digit
    and the direction it moves in), with the official TSM variant's scale regulariser (0.5): the TSM family's
    benchmark (benchmarks/family_tsm.py)."""
    return apply_overrides(replace(_small(), name="small_motion"),
                           {"data.motion": "direction", "train.scale_reg": 0.5})


def _full() -> Config:
    """The paper's sizes (ActivityNet-like): for cost counting and shape tests, not CPU training."""
    data = DataConfig(num_classes=10, num_frames=48, frame_size=224, num_train=0, num_val=0, num_test=0,
                      speed=4.0)
    model = ModelConfig(glance_width=1.0, glance_size=224, glance_frames=16, glance_stride=32,
                        glance_feature_dim=0, glance_pool="avg", focus_block="bottleneck",
                        focus_layers=(3, 4, 6, 3), focus_widths=(64, 128, 256, 512), focus_stem_stride=4,
                        patch_size=128, box_min=96, box_max=224, location_head="conv", policy_channels=128,
                        policy_separable=False, num_focus=16, temporal_channels=64, hidden_dim=4096,
                        num_classes=200, surrogate_size=4)
    pretrain = PretrainConfig(images=0, image_size=224, crop_size=128)
    return _with_recipe(Config("full", replace(data, num_classes=10), model, TrainConfig(batch_size=8), pretrain),
                        "paper")


def _with_recipe(cfg: Config, recipe: str = "cpu", **overrides: Any) -> Config:
    """``cfg`` with ``recipe`` applied, then the preset's own ``overrides`` (which win over the recipe's)."""
    return apply_overrides(cfg, {"train.recipe": recipe, **overrides})


PRESETS = {"tiny": _tiny, "fast": _fast, "small": _small, "full": _full, "small_motion": _small_motion}

# Models trained on a longer budget than the preset's, so that comparisons are against a converged
# baseline (the benchmark and the notebooks apply these; see docs/design.md, "Baselines"): the full-frame
# baseline reached 96.8% (test) at 8 epochs and was flat over the last 4 of 12 (val 96.8-97.0%, test 97.7%).
MODEL_TRAIN_OVERRIDES: dict[str, dict[str, Any]] = {"full_frame": {"train.epochs": 12}}
# The X3D family member and its full-clip baseline learn more slowly (3-D networks, channelwise convolutions):
# 16 epochs each, the same budget for both, from 24 epochs of their own pretraining (the X3Ds use only
# adafocus.pretrain_x3d, so its epochs change nothing else); docs/design.md, "X3D and space-time cubes": after
# 8 epochs of pretraining the focus X3D read 42% of the held-out images (the glance 23%), after 24 72% (56%).
# (Trained 16 epochs the whole-clip X3D's validation accuracy peaked at epoch 11, 63.0%, and it overfits; trained
# 11 epochs, its cosine schedule ending there, it reached 56.0% on validation and 55.1% on test against 59.7% after
# 16, so it keeps 16.)
X3D_BUDGET = {"train.epochs": 16, "pretrain.epochs": 24}
MODEL_TRAIN_OVERRIDES.update({"uni_adafocus_x3d": X3D_BUDGET, "x3d_full": X3D_BUDGET})


def get_config(name: str = "small", **overrides: Any) -> Config:
    """A named preset with optional dotted overrides, validated.

    ``train.recipe`` is applied first (it sets several fields), then the other overrides.

    >>> get_config("tiny", **{"model.num_focus": 2}).model.num_focus
    2
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    cfg = PRESETS[name]()
    cfg = apply_overrides(cfg, overrides) if overrides else cfg
    if name != "full":  # the full preset's 200 classes describe ActivityNet, not the synthetic data
        cfg.validate()
    else:
        cfg.data.validate()
        cfg.model.validate()
        cfg.train.validate()
        cfg.pretrain.validate()
    return cfg


SECTIONS = ("data", "model", "train", "pretrain")


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Return ``cfg`` with dotted-path overrides applied, e.g. ``{"model.patch_size": 32}``.

    ``train.recipe`` first expands into the fields it sets (:data:`RECIPES`); the other overrides
    then apply on top, so ``{"train.recipe": "paper", "train.scale_reg": 0.5}`` is the paper's recipe
    with one change.
    """
    overrides = dict(overrides)
    if "train.recipe" in overrides:
        recipe = overrides.pop("train.recipe")
        overrides = {**recipe_overrides(recipe), "train.recipe": recipe, **overrides}
    sections = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    for key, value in overrides.items():
        section, _, attr = key.partition(".") if isinstance(key, str) else ("", "", "")
        if section not in SECTIONS or not attr:
            raise ConfigError(f"override {key!r}: expected one of " + ", ".join(f"'{s}.<field>'" for s in SECTIONS))
        sub = sections[section]
        names = {f.name: f for f in fields(sub)}
        if attr not in names:
            raise ConfigError(f"override {key!r}: {section} has no field {attr!r}; fields: {sorted(names)}")
        current = getattr(sub, attr)
        if isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        sections[section] = replace(sub, **{attr: value})
        _check_types(sections[section], section)  # a wrong type is never a useful intermediate state
    return replace(cfg, **sections)
