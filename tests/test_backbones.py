"""Backbones: exact paper architectures, shapes, the temporal shift, init, channels_last."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from adafocus.models.backbones import (
    BasicBlock,
    Bottleneck,
    MobileNetV2,
    ResNet,
    make_divisible,
    mobilenet_v2,
    resnet,
    temporal_shift,
)

torch.set_num_threads(1)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def randomize_bn(m: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN a random affine and running stats, so zero-initialised branches do something."""
    g = torch.Generator().manual_seed(seed)
    for bn in m.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.weight.data = torch.randn(bn.num_features, generator=g)
            bn.bias.data = torch.randn(bn.num_features, generator=g) * 0.1
            bn.running_var.data = torch.rand(bn.num_features, generator=g) + 0.5
    return m.eval()


# ---- exact paper architectures --------------------------------------------------------------

def test_mobilenet_v2_1_0_is_the_paper_architecture() -> None:
    m = mobilenet_v2(1.0)
    assert m.feature_dim == 1280
    # torchvision's mobilenet_v2 has 3,504,872 parameters, of which 1,281,000 are the classifier
    assert n_params(m) == 3_504_872 - 1_281_000


def test_resnet50_is_the_paper_architecture() -> None:
    r = resnet(50)
    assert r.feature_dim == 2048
    # torchvision's resnet50 has 25,557,032 parameters, of which 2,049,000 are the fc layer
    assert n_params(r) == 25_557_032 - 2_049_000
    assert n_params(resnet(18)) == 11_689_512 - 513_000


def test_make_divisible_rounds_to_multiples_without_losing_more_than_10_percent() -> None:
    for v in [3.0, 8.0, 12.0, 16.5, 20.0, 100.0, 1280 * 0.35]:
        d = make_divisible(v, 8)
        assert d % 8 == 0 and d >= 0.9 * v


# ---- shapes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 64, 96])
def test_mobilenet_shapes_downsample_by_32(size: int) -> None:
    m = mobilenet_v2(0.5).eval()
    x = torch.randn(2, 3, size, size)
    fmap = m.forward_features(x)
    assert fmap.shape == (2, m.feature_dim, size // 32, size // 32)
    assert m(x).shape == (2, m.feature_dim)
    assert torch.allclose(m(x), fmap.mean(dim=(2, 3)), atol=1e-5)


def test_mobilenet_width_last_channels_and_output_stride() -> None:
    assert mobilenet_v2(0.5).feature_dim == 1280  # 1280 * max(1, width)
    assert mobilenet_v2(1.4).feature_dim == make_divisible(1280 * 1.4)
    assert mobilenet_v2(0.5, last_channels=96).feature_dim == 96
    m = mobilenet_v2(0.5, output_stride=8).eval()
    assert m.forward_features(torch.randn(1, 3, 32, 32)).shape[-2:] == (4, 4)
    # same parameters as the stride-32 net: only strides change
    assert n_params(m) == n_params(mobilenet_v2(0.5))
    with pytest.raises(ValueError, match="output_stride"):
        mobilenet_v2(1.0, output_stride=12)
    with pytest.raises(ValueError, match="width_mult"):
        MobileNetV2(width_mult=0)


def test_mobilenet_depth_and_stages_make_a_shallow_glance() -> None:
    deep = mobilenet_v2(0.5)
    shallow = mobilenet_v2(0.5, depth_mult=0.34, num_stages=4, output_stride=8, last_channels=128).eval()
    blocks = [b for b in shallow.features if hasattr(b, "use_residual")]
    assert len(blocks) == 4  # one inverted residual per stage (the paper has 17 over 7 stages)
    assert len([b for b in deep.features if hasattr(b, "use_residual")]) == 17
    assert shallow.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 128, 4, 4)
    assert n_params(shallow) < n_params(deep) / 10
    with pytest.raises(ValueError, match="num_stages"):
        mobilenet_v2(1.0, num_stages=8)
    with pytest.raises(ValueError, match="depth_mult"):
        mobilenet_v2(1.0, depth_mult=0)


def test_mobilenet_in_channels() -> None:
    m = mobilenet_v2(0.25, in_channels=1).eval()
    assert m(torch.randn(2, 1, 32, 32)).shape == (2, m.feature_dim)


@pytest.mark.parametrize("stem_stride,expected", [(1, 3), (2, 2), (4, 1)])
def test_resnet_stem_strides(stem_stride: int, expected: int) -> None:
    # 24 px patch: stride 1 -> 24,12,6,3 ; stride 2 -> 12,6,3,2 ; stride 4 -> 6,3,2,1
    r = ResNet("basic", (1, 1, 1, 1), (8, 16, 16, 32), stem_stride=stem_stride).eval()
    fmap = r.forward_features(torch.randn(3, 3, 24, 24))
    assert fmap.shape == (3, 32, expected, expected)
    assert r(torch.randn(3, 3, 24, 24)).shape == (3, r.feature_dim)


def test_resnet_bottleneck_feature_dim_and_bad_specs() -> None:
    r = ResNet("bottleneck", (1, 1), (8, 16), stem_stride=2)
    assert r.feature_dim == 64
    assert r(torch.randn(2, 3, 16, 16)).shape == (2, 64)
    with pytest.raises(ValueError, match="block"):
        ResNet("wide", (1,), (8,))
    with pytest.raises(ValueError, match="same"):
        ResNet("basic", (1, 1), (8,))
    with pytest.raises(ValueError, match="stem_stride"):
        ResNet("basic", (1,), (8,), stem_stride=3)
    with pytest.raises(ValueError, match="depth"):
        resnet(19)


def test_resnet_builder_by_spec_and_base_width() -> None:
    r = resnet(None, base_width=16, block="basic", layers=(1, 1, 1, 1), stem_stride=2)
    assert r.feature_dim == 128
    assert [s[0].conv1[0].out_channels for s in r.stages] == [16, 32, 64, 128]


# ---- initialisation ---------------------------------------------------------------------------

def test_residual_blocks_start_as_identity_and_convs_are_kaiming() -> None:
    r = ResNet("basic", (2, 2), (16, 32), stem_stride=2).eval()
    block = r.stages[0][1]  # identity skip
    assert isinstance(block.downsample, nn.Identity)
    x = torch.rand(2, 16, 8, 8)  # non-negative: relu(x) == x
    assert torch.equal(block(x), x)
    for blk in r.modules():
        if isinstance(blk, (BasicBlock, Bottleneck)):
            assert torch.count_nonzero(blk.last_bn().weight) == 0
    conv = resnet(50).stages[3][0].conv2[0]  # 512 -> 512, 3x3
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)


def test_mobilenet_residual_blocks_start_as_identity() -> None:
    m = mobilenet_v2(0.5).eval()
    blocks = [b for b in m.features if getattr(b, "use_residual", False)]
    assert blocks, "MobileNetV2 should have residual inverted blocks"
    x = torch.randn(1, blocks[0].conv[0][0].in_channels, 8, 8)
    assert torch.equal(blocks[0](x), x)


# ---- temporal shift ---------------------------------------------------------------------------

def test_temporal_shift_moves_channels_in_time_with_zero_padding() -> None:
    n, t, c = 2, 4, 8
    # value = 100 * clip + 10 * frame + channel, so every entry says where it came from
    x = (100 * torch.arange(n).view(n, 1, 1) + 10 * torch.arange(t).view(1, t, 1)
         + torch.arange(c).view(1, 1, c)).float().view(n * t, c, 1, 1).expand(n * t, c, 2, 3)
    out = temporal_shift(x, num_segments=t, fold_div=4).view(n, t, c, 2, 3)[..., 0, 0]  # (N, T, C)
    xs = x.reshape(n, t, c, 2, 3)[..., 0, 0]
    fold = c // 4
    assert torch.equal(out[:, :-1, :fold], xs[:, 1:, :fold])  # frame t sees frame t+1
    assert torch.equal(out[:, -1, :fold], torch.zeros(n, fold))  # nothing after the last frame
    assert torch.equal(out[:, 1:, fold:2 * fold], xs[:, :-1, fold:2 * fold])  # frame t sees t-1
    assert torch.equal(out[:, 0, fold:2 * fold], torch.zeros(n, fold))
    assert torch.equal(out[:, :, 2 * fold:], xs[:, :, 2 * fold:])
    # never mixes clips: clip 1 holds only values >= 100 or zeros
    assert bool(((out[1] >= 100) | (out[1] == 0)).all())


def test_temporal_shift_rejects_bad_batches() -> None:
    with pytest.raises(ValueError, match="num_segments"):
        temporal_shift(torch.zeros(6, 8, 2, 2), num_segments=4)
    with pytest.raises(ValueError, match="num_segments"):
        temporal_shift(torch.zeros(6, 8, 2, 2), num_segments=0)


def test_tsm_resnet_mixes_frames_of_a_clip_only() -> None:
    t = 4
    plain = randomize_bn(ResNet("basic", (1, 1), (16, 16), stem_stride=2))
    tsm = randomize_bn(ResNet("basic", (1, 1), (16, 16), stem_stride=2, tsm=True, tsm_segments=t))
    tsm.load_state_dict(plain.state_dict())
    x = torch.randn(2 * t, 3, 16, 16)
    x2 = x.clone()
    x2[1] += 1.0  # perturb frame 1 of clip 0
    for net, mixes in [(plain, False), (tsm, True)]:
        d = (net(x) - net(x2)).abs().amax(dim=1)  # (N*T,)
        assert d[1] > 0
        assert (d[[0, 2]] > 1e-6).all().item() is mixes  # neighbours in time see the change with TSM
        assert d[t:].max() < 1e-6  # the other clip never does
    out4 = tsm(x)
    tsm.set_segments(2)  # the same batch read as 4 clips of 2 frames: frames 1 and 2 stop mixing
    assert not torch.allclose(tsm(x), out4)


def test_tsm_needs_segments() -> None:
    r = ResNet("basic", (1,), (16,), tsm=True).eval()
    with pytest.raises(ValueError, match="set_segments"):
        r(torch.randn(4, 3, 8, 8))
    r.set_segments(2)
    assert r(torch.randn(4, 3, 8, 8)).shape == (4, 16)
    with pytest.raises(ValueError, match="num_segments"):
        r(torch.randn(3, 3, 8, 8))


# ---- channels_last and training ---------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: mobilenet_v2(0.5),
    lambda: ResNet("basic", (1, 1), (16, 32), stem_stride=2, tsm=True, tsm_segments=2),
    lambda: ResNet("bottleneck", (1, 1), (8, 16), stem_stride=4),
])
def test_channels_last_matches_contiguous(make) -> None:
    net = randomize_bn(make())
    x = torch.randn(4, 3, 64, 64)
    ref = net(x)
    net_cl = net.to(memory_format=torch.channels_last)
    out = net_cl(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(out, ref, atol=1e-4, rtol=1e-4)


def test_training_step_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    net = ResNet("basic", (1, 1), (8, 16), stem_stride=2, tsm=True, tsm_segments=2).train()
    randomize_bn(net).train()  # non-zero gammas so every conv gets a gradient
    net(torch.randn(4, 3, 16, 16)).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


ODD_BATCH_TRAINING = """
import torch
from adafocus.config import get_config
from adafocus.models.registry import create_model
torch.set_num_threads(2)
torch.manual_seed(0)
cfg = get_config("tiny")
model = create_model("full_frame", cfg).train()  # channels_last focus, a 1x1 stride-2 downsample
for clips in (1, 3, 9):  # odd batches of frames (full_frame_frames = 4, so also 4, 12, 36) and patches
    video = torch.rand(clips, cfg.data.num_frames, 3, cfg.data.frame_size, cfg.data.frame_size)
    model(video).logits.sum().backward()
    x = torch.rand(2 * clips + 1, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    model.focus(x).sum().backward()
print("ok")
"""


def test_training_the_channels_last_focus_on_odd_batches_with_two_threads_does_not_crash() -> None:
    """Seen with torch 2.13.0+cpu (oneDNN, AVX-512, AVX2 and the portable kernels alike): the weight
    gradient of a 1x1 stride-2 conv in channels_last (the ResNet downsample) with an odd batch and 2
    threads corrupts the heap (``free(): invalid next size``, a segmentation fault). One thread, or
    contiguous memory, or MKLDNN off does not. The trainer uses ``train.num_threads`` threads and the
    tiny preset's K = 3 gives odd batches of patches, so a user who sets 2 threads must not crash.
    Run in a subprocess: a crash must fail this test, not kill the test session."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", ODD_BATCH_TRAINING], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (proc.returncode, proc.stderr[-2000:])
