"""The classifier with exits (adafocus.models.heads): shapes, causality, step-wise API, cost."""

from __future__ import annotations

import pytest
import torch

from adafocus.flops import count_macs
from adafocus.models.heads import ExitClassifier


def _clf(**kw) -> ExitClassifier:
    torch.manual_seed(0)
    args = dict(glance_dim=12, focus_dim=20, glance_frames=4, num_focus=3, hidden_dim=16, num_classes=5)
    args.update(kw)
    return ExitClassifier(**args).eval()


def test_exit_counts_and_shapes() -> None:
    g, f = torch.randn(2, 4, 12), torch.randn(2, 3, 20)
    out = _clf()(g, f)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 7, 5)  # the exit logits, nothing else
    assert _clf(exits=False)(g, f).shape == (2, 1, 5)
    assert _clf(glance_dim=None)(None, f).shape == (2, 3, 5)
    assert _clf(focus_dim=None)(g, None).shape == (2, 4, 5)
    assert _clf(focus_dim=None, exits=False)(g, None).shape == (2, 1, 5)
    with pytest.raises(ValueError, match="focus_feats must be"):
        _clf()(g, torch.randn(2, 4, 20))  # more than K focus steps
    with pytest.raises(ValueError, match="glance_feats must be"):
        _clf()(torch.randn(2, 3, 12), f)  # the glance steps always come complete
    with pytest.raises(ValueError, match="focus_feats must be"):
        _clf()(g, None)


def test_the_classifier_has_no_auxiliary_heads() -> None:
    """The per-frame heads of the training signal belong to the model (glance_head, focus_head)."""
    clf = _clf()
    names = {n for n, _ in clf.named_children()}
    assert names == {"glance_mlp", "focus_mlp", "glance_exits", "focus_exits"}
    assert set(dict(_clf(exits=False).named_children())) == {"glance_mlp", "focus_mlp", "final"}


def test_fewer_focus_steps_give_the_exits_of_the_steps_taken() -> None:
    clf = _clf()
    g, f = torch.randn(2, 4, 12), torch.randn(2, 3, 20)
    full = clf(g, f)
    for k in (1, 2, 3):
        part = clf(g, f[:, :k])
        assert part.shape == (2, 4 + k, 5)
        assert torch.allclose(part, full[:, :4 + k], atol=1e-6)
    no_glance = _clf(glance_dim=None)
    assert torch.allclose(no_glance(None, f[:, :2]), no_glance(None, f)[:, :2], atol=1e-6)
    with pytest.raises(ValueError, match="focus_feats must be .* with 3 steps"):
        _clf(exits=False)(g, f[:, :2])  # one head at the end: it needs all K
    with pytest.raises(ValueError, match="focus_feats must be"):
        clf(g, f[:, :0])  # at least one step


def test_an_exit_depends_only_on_the_steps_before_it() -> None:
    clf = _clf()
    g, f = torch.randn(2, 4, 12), torch.randn(2, 3, 20)
    base = clf(g, f)
    g2 = g.clone()
    g2[:, 2] += 5.0  # change glance step 3
    changed = clf(g2, f)
    assert torch.equal(changed[:, :2], base[:, :2])  # earlier glance exits untouched
    assert not torch.allclose(changed[:, 4:], base[:, 4:])  # focus exits read all the glance
    f2 = f.clone()
    f2[:, 1] += 5.0  # change focus step 2
    changed = clf(g, f2)
    assert torch.equal(changed[:, :5], base[:, :5])


@pytest.mark.parametrize("kw", [{}, {"exits": False}, {"glance_dim": None}, {"focus_dim": None}])
def test_step_by_step_matches_all_at_once(kw: dict) -> None:
    clf = _clf(**kw)
    g, f = torch.randn(3, 4, 12), torch.randn(3, 3, 20)
    ref = clf(g if clf.use_glance else None, f if clf.use_focus else None)
    state, steps = clf.init_state(), []
    for t in range(clf.glance_frames):
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
    """docs/design.md, "Costs": 1280->4096 and 2048->4096 MLPs, 16 + 16 exits, 200 classes: about 0.26 GMACs."""
    clf = ExitClassifier(1280, 2048, 16, 16, 4096, 200)
    macs = count_macs(clf, torch.zeros(1, 16, 1280), torch.zeros(1, 16, 2048))
    assert abs(macs / 1e9 - 0.26) / 0.26 < 0.02
