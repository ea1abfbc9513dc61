"""The classifier with exits (adafocus.models.heads): shapes, causality, step-wise API, cost."""

from __future__ import annotations

import pytest
import torch

from adafocus.flops import count_macs
from adafocus.models.heads import ExitClassifier


def _clf(**kw) -> ExitClassifier:
    torch.manual_seed(0)
    args = dict(glance_dim=12, focus_dim=20, num_glance=4, num_focus=3, hidden_dim=16, num_classes=5)
    args.update(kw)
    return ExitClassifier(**args).eval()


def test_exit_counts_and_shapes() -> None:
    g, f = torch.randn(2, 4, 12), torch.randn(2, 3, 20)
    out = _clf()(g, f)
    assert out.exit_logits.shape == (2, 7, 5)
    assert out.glance_logits.shape == (2, 5) and out.focus_logits.shape == (2, 5)
    assert _clf(exits=False)(g, f).exit_logits.shape == (2, 1, 5)
    no_glance = _clf(glance_dim=None)(None, f)
    assert no_glance.exit_logits.shape == (2, 3, 5) and no_glance.glance_logits is None
    no_focus = _clf(focus_dim=None)(g, None)
    assert no_focus.exit_logits.shape == (2, 4, 5) and no_focus.focus_logits is None
    with pytest.raises(ValueError, match="focus_feats must be"):
        _clf()(g, torch.randn(2, 2, 20))


def test_an_exit_depends_only_on_the_steps_before_it() -> None:
    clf = _clf()
    g, f = torch.randn(2, 4, 12), torch.randn(2, 3, 20)
    base = clf(g, f).exit_logits
    g2 = g.clone()
    g2[:, 2] += 5.0  # change glance step 3
    changed = clf(g2, f).exit_logits
    assert torch.equal(changed[:, :2], base[:, :2])  # earlier glance exits untouched
    assert not torch.allclose(changed[:, 4:], base[:, 4:])  # focus exits read all the glance
    f2 = f.clone()
    f2[:, 1] += 5.0  # change focus step 2
    changed = clf(g, f2).exit_logits
    assert torch.equal(changed[:, :5], base[:, :5])


@pytest.mark.parametrize("kw", [{}, {"exits": False}, {"glance_dim": None}, {"focus_dim": None}])
def test_step_by_step_matches_all_at_once(kw: dict) -> None:
    clf = _clf(**kw)
    g, f = torch.randn(3, 4, 12), torch.randn(3, 3, 20)
    ref = clf(g if clf.use_glance else None, f if clf.use_focus else None).exit_logits
    state, steps = clf.init_state(), []
    for t in range(clf.num_glance):
        logits, state = clf.glance_step(g[:, t], state)
        steps.append(logits)
    for k in range(clf.num_focus):
        logits, state = clf.focus_step(f[:, k], state)
        steps.append(logits)
    got = [s for s in steps if s is not None]
    assert len(got) == clf.num_exits
    assert torch.allclose(torch.stack(got, 1), ref, atol=1e-6)


def test_state_select_keeps_the_remaining_samples() -> None:
    clf = _clf()
    g = torch.randn(4, 4, 12)
    state = clf.init_state()
    for t in range(4):
        _, state = clf.glance_step(g[:, t], state)
    keep = torch.tensor([True, False, True, False])
    sub = state.select(keep)
    logits_sub, _ = clf.focus_step(torch.ones(2, 20), sub)
    logits_all, _ = clf.focus_step(torch.ones(4, 20), state)
    assert torch.allclose(logits_sub, logits_all[keep], atol=1e-6)


def test_steps_must_come_in_order() -> None:
    clf = _clf()
    with pytest.raises(RuntimeError, match="glance steps first"):
        clf.focus_step(torch.randn(1, 20), clf.init_state())
    state = clf.init_state()
    for _ in range(4):
        _, state = clf.glance_step(torch.randn(1, 12), state)
    with pytest.raises(RuntimeError, match="already taken"):
        clf.glance_step(torch.randn(1, 12), state)


def test_full_size_cost_matches_the_paper() -> None:
    """DESIGN.md 2: 1280->4096 and 2048->4096 MLPs, 16 + 16 exits, 200 classes: about 0.26 GMACs."""
    clf = ExitClassifier(1280, 2048, 16, 16, 4096, 200)
    macs = count_macs(clf, torch.zeros(1, 16, 1280), torch.zeros(1, 16, 2048))
    assert abs(macs / 1e9 - 0.26) / 0.26 < 0.02
