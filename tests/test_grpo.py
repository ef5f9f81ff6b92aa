"""The GRPO objective against hand-computed values, and the update on a tiny local model (no Lean, no download)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from leangym.agents.grpo import (
    GRPOConfig,
    RolloutBatch,
    clipped_surrogate,
    group_advantages,
    grpo_loss,
    k3_kl,
    per_token_logps,
    token_weights,
    update_policy,
)
from leangym.agents.tiny import TACTICS, build_tiny

PROMPTS = [
    "theorem toy_a (a b : Nat) (h : a + 2 ≤ b) : a < b := by\n  ",
    "theorem toy_b (xs : List Nat) : (xs.map id).length = xs.length := by\n  ",
]


# -- advantages -------------------------------------------------------------------------


def test_group_advantages_by_hand():
    rewards = torch.tensor([[1.0, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 1]])
    valid = torch.ones_like(rewards, dtype=torch.bool)
    adv, zero = group_advantages(rewards, valid, eps=0.0)
    # group 0: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.57735 -> ±0.8660
    assert adv[0].tolist() == pytest.approx([0.8660254, -0.8660254, -0.8660254, 0.8660254])
    # group 1: all equal -> no signal, advantage 0, counted
    assert adv[1].tolist() == [0, 0, 0, 0]
    # group 2: mean 0.25, std 0.5 -> (-0.5, -0.5, -0.5, 1.5)
    assert adv[2].tolist() == pytest.approx([-0.5, -0.5, -0.5, 1.5])
    assert zero.tolist() == [False, True, False]


def test_dr_grpo_skips_the_std():
    rewards = torch.tensor([[0.0, 0, 0, 1]])
    adv, _ = group_advantages(rewards, torch.ones_like(rewards, dtype=torch.bool), scale=False)
    assert adv[0].tolist() == pytest.approx([-0.25, -0.25, -0.25, 0.75])


def test_samples_without_verdict_are_left_out_of_the_group():
    rewards = torch.tensor([[1.0, 0, 0, 0], [1, 0, 0, 0]])
    valid = torch.tensor([[True, True, False, True], [True, False, False, False]])
    adv, zero = group_advantages(rewards, valid, eps=0.0)
    # valid rewards (1, 0, 0): mean 1/3, unbiased std sqrt((4/9 + 1/9 + 1/9) / 2) = 0.57735
    assert adv[0].tolist() == pytest.approx([1.1547005, -0.5773503, 0.0, -0.5773503])
    assert zero.tolist() == [False, True]  # one valid sample: nothing to compare with
    assert adv[1].tolist() == [0, 0, 0, 0]


# -- KL, clipping, aggregation ----------------------------------------------------------


def test_k3_kl_by_hand():
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    # delta = log(0.5): exp(delta) - delta - 1 = 0.5 + 0.693147 - 1
    assert k3_kl(logp, ref).item() == pytest.approx(0.1931472)
    assert k3_kl(logp, logp).item() == 0.0
    torch.manual_seed(0)
    a, b = torch.randn(1000), torch.randn(1000)
    assert (k3_kl(a, b) >= 0).all()


def test_clipped_surrogate_by_hand():
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[1.5, 1.5, 0.5, 0.5]]))
    losses, clipped = [], []
    for a in (1.0, -1.0):
        loss, was_clipped = clipped_surrogate(logp, old, torch.tensor([a]), eps=0.2)
        losses.append(loss[0].tolist())
        clipped.append(was_clipped[0].tolist())
    # A=+1: ratio 1.5 -> min(1.5, 1.2) = 1.2 (clipped); ratio 0.5 -> min(0.5, 0.8) = 0.5
    assert losses[0] == pytest.approx([-1.2, -1.2, -0.5, -0.5])
    assert clipped[0] == [True, True, False, False]
    # A=-1: ratio 1.5 -> min(-1.5, -1.2) = -1.5; ratio 0.5 -> min(-0.5, -0.8) = -0.8 (clipped)
    assert losses[1] == pytest.approx([1.5, 1.5, 0.8, 0.8])
    assert clipped[1] == [False, False, True, True]


def test_token_weights_per_normalisation():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    expected = {
        "token": [[1 / 3, 1 / 3, 0], [1 / 3, 0, 0]],  # every token weighs the same
        "sequence": [[0.25, 0.25, 0], [0.5, 0, 0]],  # each sequence weighs 1/N, shared by its tokens
        "constant": [[1 / 6, 1 / 6, 0], [1 / 6, 0, 0]],  # 1 / (N * max_new_tokens)
    }
    for norm, weights in expected.items():
        assert torch.allclose(token_weights(mask, norm, 3), torch.tensor(weights)), norm
    with pytest.raises(ValueError, match="loss_norm"):
        token_weights(mask, "mean", 3)  # type: ignore[arg-type]


def test_grpo_loss_by_hand():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    weights = token_weights(mask, "token", 3)
    logp = torch.log(torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]))
    ref = torch.log(torch.tensor([[0.25, 0.25, 0.25], [0.5, 0.5, 0.5]]))
    adv = torch.tensor([1.0, -1.0])
    loss, stats = grpo_loss(logp, logp, None, adv, weights, beta=0.1, clip_eps=0.2)
    # ratio 1: per token -A; tokens (-1, -1, +1) / 3
    assert loss.item() == pytest.approx(-1 / 3)
    assert "kl" not in stats
    loss, stats = grpo_loss(logp, logp, ref, adv, weights, beta=0.1, clip_eps=0.2)
    # KL 0.1931472 on the two tokens of row 0, 0 on row 1
    assert stats["kl"] == pytest.approx(2 * 0.1931472 / 3)
    assert loss.item() == pytest.approx(-1 / 3 + 0.1 * 2 * 0.1931472 / 3)


# -- on a tiny model --------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    return build_tiny(PROMPTS, seed=0)


def _batch(tokenizer, advantages=(1.0, -1.0, 0.5, -0.5)) -> RolloutBatch:
    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    eos = tokenizer.eos_token_id
    prompts = [ids(PROMPTS[0]), ids(PROMPTS[0]), ids(PROMPTS[1]), ids(PROMPTS[1])]
    completions = [[*ids(text), eos] for text in ("omega", "simp", "simp", "rfl rfl")]
    return RolloutBatch.build(prompts, completions, list(advantages), tokenizer.pad_token_id)


def test_rollout_batch_layout(tiny):
    _, tok = tiny
    batch = _batch(tok)
    assert batch.prompt_ids.shape[0] == batch.completion_ids.shape[0] == 4
    assert batch.completion_mask.sum(1).tolist() == [2, 2, 2, 3]  # tactic(s) + <eos>, right-padded
    assert (batch.prompt_mask[:, -1] == 1).all()  # prompts left-padded: the completion starts at column P


def test_logps_do_not_depend_on_padding(tiny):
    model, tok = tiny
    batch = _batch(tok)
    alone = RolloutBatch.build(
        [batch.prompt_ids[2][batch.prompt_mask[2].bool()].tolist()],
        [batch.completion_ids[2][:2].tolist()],
        [0.0],
        tok.pad_token_id,
    )
    with torch.no_grad():
        together = per_token_logps(model, batch)[2, :2]
        single = per_token_logps(model, alone)[0]
    assert together.tolist() == pytest.approx(single.tolist(), abs=1e-5)


def test_format_prior_is_uniform_over_tactics(tiny):
    model, tok = tiny
    first = [tok(t, add_special_tokens=False)["input_ids"][0] for t in TACTICS]
    for prompt in PROMPTS:
        with torch.no_grad():
            probs = model(**tok(prompt, return_tensors="pt")).logits[0, -1].softmax(-1)
        assert probs[first].tolist() == pytest.approx([1 / len(TACTICS)] * len(TACTICS), abs=0.02)


def test_update_changes_weights_and_lowers_the_loss(tiny):
    model, tok = copy.deepcopy(tiny[0]), tiny[1]
    batch = _batch(tok)
    cfg = GRPOConfig(lr=1e-4, beta=0.0, micro_batch_size=4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    weights = token_weights(batch.completion_mask, cfg.loss_norm, 8)
    with torch.no_grad():
        old = per_token_logps(model, batch)

    def loss_now() -> float:
        with torch.no_grad():
            loss, _ = grpo_loss(
                per_token_logps(model, batch), old, None, batch.advantages, weights, beta=0, clip_eps=0.2
            )
        return loss.item()

    before = [p.detach().clone() for p in model.parameters()]
    start = loss_now()
    stats = update_policy(model, optimizer, batch, cfg, ref_logps=None, max_new_tokens=8)
    assert stats.loss == pytest.approx(start, abs=1e-5)  # first epoch: ratio 1, the loss of the sampling policy
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert loss_now() < start - 1e-3
    # the sampled tokens with positive advantage became likelier, those with negative less likely
    with torch.no_grad():
        delta = (per_token_logps(model, batch) - old)[:, 0]
    assert delta[0] > 0 and delta[1] < 0


def test_micro_batches_give_the_full_batch_gradient(tiny):
    batch = _batch(tiny[1])
    grads = []
    for micro in (4, 1):
        model = copy.deepcopy(tiny[0])
        cfg = GRPOConfig(lr=1e-9, beta=0.0, micro_batch_size=micro, max_grad_norm=1e9)
        update_policy(
            model, torch.optim.SGD(model.parameters(), lr=cfg.lr), batch, cfg, ref_logps=None, max_new_tokens=8
        )
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_kl_to_the_reference_grows_from_zero(tiny):
    model, tok = copy.deepcopy(tiny[0]), tiny[1]
    reference = copy.deepcopy(tiny[0]).requires_grad_(False)
    batch = _batch(tok)
    cfg = GRPOConfig(lr=1e-4, beta=0.1, micro_batch_size=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    with torch.no_grad():
        ref = per_token_logps(reference, batch)
    first = update_policy(model, optimizer, batch, cfg, ref_logps=ref, max_new_tokens=8)
    second = update_policy(model, optimizer, batch, cfg, ref_logps=ref, max_new_tokens=8)
    assert first.kl == 0.0  # the policy starts as the reference
    assert second.kl is not None and second.kl > 0
    assert first.clip_frac == 0.0  # one epoch: the ratio is exactly 1


def test_several_epochs_clip_the_ratio(tiny):
    model, tok = copy.deepcopy(tiny[0]), tiny[1]
    cfg = GRPOConfig(lr=1e-3, beta=0.0, epochs=4, clip_eps=0.05)
    stats = update_policy(
        model, torch.optim.AdamW(model.parameters(), lr=cfg.lr), _batch(tok), cfg, ref_logps=None, max_new_tokens=8
    )
    assert stats.kl is None
    assert 0 < stats.clip_frac <= 1  # later epochs moved the ratio past 1 ± 0.05 on some tokens
