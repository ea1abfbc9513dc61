"""AdaFocus V1 (adafocus.models.adafocus_v1), its PPO pieces (adafocus.ppo) and its three stages (adafocus.train_v1)."""

from __future__ import annotations

import pytest
import torch

from adafocus.config import ConfigError, get_config
from adafocus.flops import count_macs, model_cost
from adafocus.models.adafocus_v1 import AdaFocusV1, GridPolicy, V1Config, cell_boxes, grid_corners
from adafocus.models.registry import create_model, model_config
from adafocus.ppo import confidence_gain, discounted_returns, ppo_loss, standardise
from adafocus.train import train
from adafocus.train_v1 import STAGE_FIELDS, STAGES, V1TrainConfig, v1_key

TINY = get_config("tiny")
D = TINY.data
QUICK = {"pretrain.epochs": 0, "data.num_train": 64, "data.num_val": 32, "data.num_test": 16}


def _video(b: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, D.num_frames, D.channels, D.frame_size, D.frame_size, generator=g)


def _model(seed: int = 0) -> AdaFocusV1:
    torch.manual_seed(seed)
    return create_model("adafocus_v1", TINY)


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["train", "eval"])
def test_shapes_one_glance_and_one_patch_of_side_p_per_step(mode: str) -> None:
    model = getattr(_model(), mode)()
    video = _video()
    out = model(video)
    K, n, P = TINY.model.num_focus, D.num_classes, TINY.model.patch_size
    assert isinstance(model, AdaFocusV1) and not model.needs_ground_truth
    assert out.logits.shape == (3, n) and out.exit_logits.shape == (3, K, n)
    assert torch.equal(out.logits, out.exit_logits[:, -1])
    assert out.boxes.shape == (3, K, 4) and out.frame_idx.shape == (3, K)
    assert torch.equal(out.frame_idx, out.glance_idx)  # the glance and the patch of a step see the same frame
    assert (out.frame_idx[:, 1:] > out.frame_idx[:, :-1]).all()
    sides = out.boxes[..., 2:] - out.boxes[..., :2]
    assert torch.equal(sides, torch.full_like(sides, float(P)))  # native resolution: a P x P crop
    assert out.plan.policy_logits.shape == (3, K, V1Config().num_actions) and out.plan.values.shape == (3, K)


def test_the_policys_actions_are_grid_cells_and_their_boxes_the_grid_positions() -> None:
    model = _model().train()
    G = model.v1.grid
    corners = grid_corners(G, D.frame_size, TINY.model.patch_size)
    assert corners.tolist() == [0, 4, 8, 12, 16]  # 5 positions evenly over [0, 32 - 16]
    assert grid_corners(1, 64, 24).tolist() == [20] and grid_corners(5, 64, 24).tolist() == [0, 10, 20, 30, 40]
    seen = set()
    for seed in range(5):
        torch.manual_seed(seed)
        out = model(_video(8, seed))
        cells = out.plan.cells
        assert cells.dtype == torch.long and ((cells >= 0) & (cells < G * G)).all()
        assert set(out.boxes[..., 0].unique().tolist()) <= set(corners.tolist())  # x0 on the grid
        assert set(out.boxes[..., 1].unique().tolist()) <= set(corners.tolist())  # y0 on the grid
        assert torch.equal(out.boxes, cell_boxes(cells, corners, TINY.model.patch_size))
        seen |= set(cells.flatten().tolist())
    assert len(seen) > G  # sampling explores the grid
    # row-major: cell r * G + c has its corner at (x = corners[c], y = corners[r])
    box = cell_boxes(torch.tensor([[1 * G + 3]]), corners, 16)[0, 0]
    assert box.tolist() == [12.0, 4.0, 28.0, 20.0]


def test_eval_takes_the_most_likely_cell_and_forward_is_run_of_plan() -> None:
    model = _model().eval()
    video = _video()
    with torch.no_grad():
        out = model(video)
        again = model.run(video, model.plan(video))
        assert torch.equal(out.plan.cells, out.plan.policy_logits.argmax(-1))
        assert torch.equal(out.exit_logits, again.exit_logits) and torch.equal(out.boxes, again.boxes)
        part = model.run(video, out.plan, steps=1)  # a prediction after every step: the first alone
        assert torch.allclose(part.exit_logits[:, 0], out.exit_logits[:, 0], atol=1e-6)


def test_same_seed_same_model_and_same_choices() -> None:
    a, b = _model(7).train(), _model(7).train()
    torch.manual_seed(1)
    oa = a(_video())
    torch.manual_seed(1)
    ob = b(_video())
    assert torch.equal(oa.exit_logits, ob.exit_logits) and torch.equal(oa.plan.cells, ob.plan.cells)


def test_costs_count_both_grus_and_match_v2_on_the_small_preset() -> None:
    m = create_model("adafocus_v1", TINY).eval()
    c, n = TINY.model, D.num_classes
    cg, cf, h = m.glance.feature_dim, m.focus.feature_dim, c.hidden_dim
    per_step = (cg + cf) * h + 3 * (h * h + h * h) + h * n  # embed, the GRU's 3 gates (input and hidden), head
    assert count_macs(m.classifier, torch.zeros(1, c.num_focus, cg), torch.zeros(1, c.num_focus, cf)) == \
        c.num_focus * per_step
    small = get_config("small")
    v1, v2 = model_cost("adafocus_v1", small), model_cost("adafocus_v2", small)
    assert set(v1["components"]) >= {"glance", "spatial_policy", "focus", "classifier"}
    assert v1["components"]["focus"] == pytest.approx(v2["components"]["focus"])  # K = 4 patches of P = 24
    assert abs(v1["total_gmacs"] / v2["total_gmacs"] - 1) < 0.05  # a comparable budget (15.2 vs 15.1 MMACs)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

def test_bad_input_gives_clear_errors() -> None:
    model = _model()
    video = _video()
    with pytest.raises(ValueError, match=r"looks like \(B, C, T, H, W\)"):
        model(video.transpose(1, 2))
    with pytest.raises(ValueError, match="5-D tensor"):
        model(video[0])
    with pytest.raises(ValueError, match="patch_mode must be 'policy' or 'random'"):
        model(video, patch_mode="oracle")
    with pytest.raises(ValueError, match="policy mode must be one of"):
        model(video, policy_mode="best")
    m = model_config("adafocus_v1", TINY)
    with pytest.raises(ValueError, match=r"v1.grid = 40 .* only 17 distinct positions .* expected grid <= 17"):
        AdaFocusV1(m, D.frame_size, D.num_frames, D.channels, V1Config(grid=40))
    with pytest.raises(ConfigError, match="v1.policy_hidden: expected an int in"):
        AdaFocusV1(m, D.frame_size, D.num_frames, D.channels, V1Config(policy_hidden=0))
    with pytest.raises(ValueError, match="patch_size = 40 exceeds the frame"):
        grid_corners(5, 32, 40)
    with pytest.raises(ConfigError, match="v1_train.clip: expected a float in"):
        V1TrainConfig(clip=1.5).validate()
    with pytest.raises(ConfigError, match="v1_train.ppo_epochs: expected an int"):
        V1TrainConfig(ppo_epochs=1.5).validate()


# ---------------------------------------------------------------------------------------------
# PPO on hand-made numbers
# ---------------------------------------------------------------------------------------------

def test_rewards_are_confidence_gains_and_returns_discount_them() -> None:
    conf = torch.tensor([[0.2, 0.5, 0.4]])
    assert torch.allclose(confidence_gain(conf), torch.tensor([[0.2, 0.3, -0.1]]))
    assert torch.allclose(confidence_gain(conf).sum(1), conf[:, -1])  # the gains add up to the final confidence
    r = torch.tensor([[1.0, 0.0, 2.0]])
    assert torch.allclose(discounted_returns(r, 0.5), torch.tensor([[1.5, 1.0, 2.0]]))  # 1 + .5 (0 + .5 * 2)
    assert torch.allclose(discounted_returns(r, 0.0), r)
    s = standardise(torch.tensor([[1.0, 2.0, 3.0]]))
    assert abs(float(s.mean())) < 1e-6 and abs(float(s.std(unbiased=False)) - 1) < 1e-4
    with pytest.raises(ValueError, match="gamma must be in"):
        discounted_returns(r, 1.5)


def _one_step(advantage: float, ratio: float, clip: float = 0.2) -> tuple[float, float]:
    """ppo_loss on one step with 2 actions, the old policy uniform, the new one giving action 0 ``ratio`` times the
    old probability; returns (policy loss, gradient of the loss on action 0's logit)."""
    p = 0.5 * ratio
    logits = torch.tensor([[[float(torch.log(torch.tensor(p / (1 - p)))), 0.0]]], requires_grad=True)
    values = torch.zeros(1, 1)
    loss, parts = ppo_loss(logits, values, torch.zeros(1, 1, dtype=torch.long), torch.log(torch.tensor([[0.5]])),
                           torch.tensor([[advantage]]), clip, value_weight=0.0, entropy_weight=0.0)
    loss.backward()
    return parts["policy"], float(logits.grad[0, 0, 0])


def test_ppo_clipping_and_the_advantage_sign() -> None:
    # inside the clip range: the loss is -ratio * A and a positive advantage pushes the action's logit up
    loss, grad = _one_step(advantage=1.0, ratio=1.0)
    assert loss == pytest.approx(-1.0) and grad < 0  # gradient descent raises the logit
    loss, grad = _one_step(advantage=-1.0, ratio=1.0)
    assert loss == pytest.approx(1.0) and grad > 0  # ...and a negative one pushes it down
    # ratio 1.5 > 1 + 0.2 with A > 0: clipped at 1.2, no gradient (the step would leave the trust region)
    loss, grad = _one_step(advantage=1.0, ratio=1.5)
    assert loss == pytest.approx(-1.2, abs=1e-5) and grad == 0.0
    # ratio 1.5 with A < 0: min(1.5 A, 1.2 A) = 1.5 A, not clipped: the mistake is still corrected
    loss, grad = _one_step(advantage=-1.0, ratio=1.5)
    assert loss == pytest.approx(1.5, abs=1e-5) and grad > 0
    # ratio 0.5 < 1 - 0.2 with A < 0: clipped at 0.8, no gradient
    loss, grad = _one_step(advantage=-1.0, ratio=0.5)
    assert loss == pytest.approx(0.8, abs=1e-5) and grad == 0.0


def test_value_and_entropy_terms() -> None:
    logits = torch.zeros(2, 3, 4)  # uniform over 4 actions: entropy log 4
    values, returns = torch.ones(2, 3), torch.full((2, 3), 3.0)
    actions, old = torch.zeros(2, 3, dtype=torch.long), torch.full((2, 3), -float(torch.log(torch.tensor(4.0))))
    loss, parts = ppo_loss(logits, values, actions, old, returns, 0.2, value_weight=0.5, entropy_weight=0.01)
    assert parts["value"] == pytest.approx(4.0)
    assert parts["entropy"] == pytest.approx(float(torch.log(torch.tensor(4.0))))
    assert parts["policy"] == pytest.approx(-2.0)  # ratio 1, advantage 3 - 1
    assert float(loss) == pytest.approx(-2.0 + 0.5 * 4.0 - 0.01 * parts["entropy"], abs=1e-6)
    with pytest.raises(ValueError, match=r"ppo_loss: expected logits \(B, K, A\)"):
        ppo_loss(logits, values[:, :2], actions, old, returns, 0.2, 0.5, 0.01)


def test_ppo_teaches_the_grid_policy_the_rewarded_cell() -> None:
    """A bandit: the reward is 1 for cell 3 and 0 elsewhere, whatever the map. A few PPO updates on sampled
    episodes make cell 3 the most likely."""
    torch.manual_seed(0)
    v1 = V1Config(grid=3, policy_channels=4, policy_hidden=16)
    policy = GridPolicy(8, 4, v1)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
    maps = torch.rand(32, 2, 8, 4, 4)
    with torch.no_grad():
        start = torch.softmax(policy(maps)[0], -1)[..., 3].mean()
    for _ in range(60):
        with torch.no_grad():
            logits, _ = policy(maps)
            dist = torch.distributions.Categorical(logits=logits)
            cells = dist.sample()
            old = dist.log_prob(cells)
            returns = standardise(discounted_returns((cells == 3).float(), 0.7))
        for _ in range(2):
            logits, values = policy(maps)
            loss, _ = ppo_loss(logits, values, cells, old, returns, 0.2, 0.5, 0.01)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        end = torch.softmax(policy(maps)[0], -1)[..., 3].mean()
    assert start < 0.2 and end > 0.8


# ---------------------------------------------------------------------------------------------
# the three stages
# ---------------------------------------------------------------------------------------------

def test_every_v1_setting_is_in_the_key_of_the_first_stage_it_changes() -> None:
    import dataclasses

    names = [f for stage in STAGES for f in STAGE_FIELDS[stage]]
    assert sorted(names) == sorted(f.name for f in dataclasses.fields(V1TrainConfig)) and len(set(names)) == len(names)
    model, v = _model(), V1TrainConfig()
    keys = {s: v1_key("run", v, model, s) for s in STAGES}
    other = {s: v1_key("run", dataclasses.replace(v, lr_ppo=2e-3), model, s) for s in STAGES}
    assert keys["warmup"] == other["warmup"]  # the warm-up is reused when only PPO changes...
    assert keys["ppo"] != other["ppo"] and keys["finetune"] != other["finetune"]  # ...and what follows it is not
    assert len(set(keys.values())) == 3


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_three_stages_train_only_their_parts_are_cached_and_reproducible(tmp_path) -> None:
    cfg = get_config("tiny", **QUICK)
    result = train("adafocus_v1", cfg, progress=False, checkpoint_dir=tmp_path / "a")
    h = result.history
    assert list(h["stage"]) == list(STAGES) and list(h["epoch"]) == [1, 2, 3] and not result.from_cache
    assert h["val_acc"].between(0, 1).all() and h["seconds"].gt(0).all()
    assert {"train_policy", "train_value", "train_entropy", "train_clip_fraction"} <= set(h.columns)
    ppo = h[h.stage == "ppo"].iloc[0]
    assert 0 < ppo["train_entropy"] <= float(torch.log(torch.tensor(25.0))) + 1e-4  # 25 cells
    files = sorted(p.name for p in (tmp_path / "a").glob("adafocus_v1*.pt"))
    assert len(files) == 3 and result.checkpoint.name.startswith("adafocus_v1-tiny-")

    # what each stage changed: the stage checkpoints hold the model after each stage
    from adafocus.fit import load_checkpoint
    states = {}
    for stage in STAGES:
        name = "adafocus_v1" if stage == "finetune" else f"adafocus_v1.{stage}"
        path = next((tmp_path / "a").glob(f"{name}-tiny-*.pt"))
        key = path.stem[len(f"{name}-tiny-"):]
        states[stage] = {k[len("model."):]: v for k, v in load_checkpoint(path, name, key)["model"].items()}
    torch.manual_seed(cfg.train.seed)
    start = _weights(create_model("adafocus_v1", cfg))

    def part(state: dict, prefix: str) -> dict:
        return {k: v for k, v in state.items() if k.startswith(prefix)}

    for prefix, changed_in in (("glance.", "warmup"), ("focus.", "warmup"), ("spatial_policy.", "ppo"),
                               ("classifier.", "finetune")):
        before = part(start, prefix)
        for stage in STAGES:
            after = part(states[stage], prefix)
            moved = not _same(before, after)
            if stage == changed_in or (prefix == "classifier." and stage == "warmup"):
                assert moved, (prefix, stage)
            else:
                assert not moved, (prefix, stage)  # frozen in this stage (batch-norm statistics too)
            before = after

    again = train("adafocus_v1", cfg, progress=False, checkpoint_dir=tmp_path / "a")
    assert again.from_cache and again.history.equals(h)
    twin = train("adafocus_v1", cfg, progress=False, checkpoint_dir=tmp_path / "b")  # same seed, same numbers
    metrics = [c for c in h.columns if c != "seconds"]
    assert twin.history[metrics].equals(h[metrics]) and _same(_weights(twin.model), _weights(result.model))


def test_the_family_figure_draws_every_seed_and_names_v1s_stages() -> None:
    import matplotlib.pyplot as plt
    import pandas as pd

    from adafocus.viz.plots import family_learning_curves

    stages = ["warmup"] * 2 + ["ppo"] * 2 + ["finetune"]
    v1 = pd.DataFrame({"seed": [0] * 5 + [1] * 5, "stage": stages * 2, "epoch": list(range(1, 6)) * 2,
                       "val_acc": [0.3, 0.4, 0.45, 0.5, 0.55, 0.3, 0.42, 0.5, 0.52, 0.6], "seconds": [10.0] * 10})
    e2e = pd.DataFrame({"method": ["adafocus_v2"] * 3, "seed": [0] * 3, "epoch": [1, 2, 3],
                        "val_acc": [0.6, 0.9, 0.95], "seconds": [20.0] * 3})
    fig = family_learning_curves(v1, e2e)
    left, right = fig.axes
    assert len(left.lines) == len(right.lines) == 3  # V2, V1 seed 0, V1 seed 1
    texts = [t.get_text() for t in left.texts]
    assert texts == ["V1: warmup", "V1: ppo", "V1: finetune"]
    assert list(right.lines[-1].get_xdata()) == pytest.approx([10 / 60 * i for i in range(1, 6)])  # cumulative minutes
    plt.close(fig)
