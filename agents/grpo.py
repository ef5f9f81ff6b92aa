"""GRPO (Group Relative Policy Optimization) for provers, with the Lean kernel as the reward.

One step, for a batch of B problems (shapes in comments: N = B·G sequences, P prompt
tokens, C completion tokens):

1. sample a group of G proofs per problem from the policy;
2. verify all B·G proofs in one batch (`Verifier.verify_batch`): reward 1 if proved, 0 if
   rejected; a verdict `error` (Lean crashed, timed out) is retried, never scored 0, and a
   sample still in error is left out;
3. advantage of each sample relative to its group: A = (r − mean) / (std + ε) [1], or
   A = r − mean with `scale_rewards=False` [3]. A group whose rewards are all equal
   has A = 0 everywhere: it carries no signal, so it is dropped from the update (and
   counted in `zero_variance_frac`);
4. loss per completion token t of sample i [1]:
       ratio = π(t) / π_old(t)
       ℓ = −min(ratio·A, clip(ratio, 1−ε, 1+ε)·A) + β·KL_k3(π ‖ π_ref)
   with KL_k3 = exp(ref − logp) − (ref − logp) − 1 (unbiased, always ≥ 0) [4]. π_old is the
   policy that sampled: its log-probabilities are recomputed with the trainer's model before
   the update (vLLM's own numbers differ slightly from the trainer's, and a ratio must
   compare like with like); with one epoch, π_old = π and the ratio is exactly 1 with the
   gradient of the plain policy gradient. β = 0 drops the reference model.
5. aggregate (`loss_norm`), documented in docs/training.md:
       token    — Σ ℓ / (number of completion tokens in the batch): every token weighs the same [2];
       sequence — mean over sequences of each sequence's mean [1]: short completions weigh
                  more per token;
       constant — Σ ℓ / (N · max_new_tokens) [3]: no length bias at all.
   The weights are computed over the whole batch, so gradient accumulation over
   micro-batches gives exactly the gradient of the full batch. AdamW, gradient clipping,
   `epochs` optimiser steps per batch, bf16 autocast on GPU.

References (cited again next to the code each one justifies):

[1] Z. Shao et al., "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
    Language Models", 2024, arXiv:2402.03300, §4.1 (GRPO): the group-relative advantage,
    the clipped objective with a KL penalty, the per-sequence mean over tokens.
[2] Q. Yu et al., "DAPO: An Open-Source LLM Reinforcement Learning System at Scale", 2025,
    arXiv:2503.14476: token-level normalisation of the loss (§3.3); clip-higher (§3.1), a
    larger upper clip bound, is not used here: the clip is symmetric.
[3] Z. Liu et al., "Understanding R1-Zero-Like Training: A Critical Perspective", 2025,
    arXiv:2503.20783 (Dr. GRPO): no division by the group's std, and a constant
    normalisation instead of each sequence's length.
[4] J. Schulman, "Approximating KL Divergence", blog post, 2020,
    http://joschu.net/blog/kl-approx.html: the k3 estimator.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from leangym.agents.generation import Completion, Generator, SamplingConfig
from leangym.agents.passk import ks_up_to, mean_pass_at_k
from leangym.agents.prompts import encode_prompts, extract_proof, render_prompt
from leangym.rewards.verifier import verify_with_retries

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from leangym.rewards.problem import Problem
    from leangym.rewards.verdict import Verdict
    from leangym.rewards.verifier import BaseVerifier

LossNorm = Literal["token", "sequence", "constant"]


@dataclass(frozen=True)
class GRPOConfig:
    """The algorithm's knobs (the rest of a run's settings live in `train.TrainConfig`)."""

    group_size: int = 8  # G: samples per problem
    clip_eps: float = 0.2  # ε of the clipped ratio
    beta: float = 0.04  # weight of the KL penalty to the reference model; 0 = no reference model
    epochs: int = 1  # optimiser steps on each batch of samples
    scale_rewards: bool = True  # divide advantages by the group std; False = Dr. GRPO
    adv_eps: float = 1e-4
    loss_norm: LossNorm = "token"
    lr: float = 1e-6
    warmup_steps: int = 0  # the lr rises linearly over the first steps (Adam's first updates are the largest)
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    micro_batch_size: int = 16  # sequences per forward/backward; gradients accumulate over the batch
    verify_retries: int = 2  # extra verification rounds for verdicts `error`
    bf16: bool = True  # autocast to bfloat16 on GPU (ignored on CPU)


# -- the pieces of the objective, each testable by hand ---------------------------------


def group_advantages(
    rewards: torch.Tensor, valid: torch.Tensor, *, scale: bool = True, eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-relative advantages and which groups have no signal.

    A = (r − mean) / (std + eps), the outcome-supervision advantage of GRPO ([1] §4.1.2): the
    group's mean stands in for a learned value function. `scale=False` drops the division
    by the std ([3]: it over-weights groups that are almost all right or all wrong).

    rewards: [B, G] float; valid: [B, G] bool (False = the verifier gave no verdict; left out of
    the statistics, advantage 0). The std is the unbiased one (as torch.std and TRL).
    Returns advantages [B, G] and zero_variance [B] (all valid rewards equal, or < 2 valid).
    """
    import torch

    v = valid.float()  # [B, G]
    count = v.sum(1, keepdim=True)  # [B, 1]
    mean = (rewards * v).sum(1, keepdim=True) / count.clamp(min=1)  # [B, 1]
    centred = (rewards - mean) * v  # [B, G]
    var = (centred**2).sum(1, keepdim=True) / (count - 1).clamp(min=1)  # [B, 1], unbiased
    std = var.sqrt()
    zero_variance = (std.squeeze(1) == 0) | (count.squeeze(1) < 2)  # [B]
    adv = centred / (std + eps) if scale else centred  # [B, G]; scale=False: Dr. GRPO [3]
    adv = torch.where(zero_variance[:, None], torch.zeros_like(adv), adv)
    return adv, zero_variance


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(π ‖ π_ref) estimate [N, C] from tokens sampled from π.

    k3 = (ρ − 1) − log ρ with ρ = π_ref/π [4]: unbiased (unlike k2 = ½(log ρ)²) and ≥ 0 on
    every token (unlike k1 = −log ρ). GRPO's KL term is this estimator ([1] §4.1.1).
    logp, ref_logp: [N, C].
    """
    delta = ref_logp - logp  # [N, C]: log ρ
    return delta.exp() - delta - 1  # [N, C]


def clipped_surrogate(
    logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token −min(ratio·A, clip(ratio)·A) [N, C] and where the clipped term was chosen [N, C].

    PPO's clipped surrogate as GRPO uses it ([1] §4.1.1), A being the sample's advantage on
    every token of it. logp, old_logp: [N, C]; adv: [N]. The bounds are symmetric, 1 ± eps
    (not DAPO's clip-higher [2]).
    """
    import torch

    ratio = (logp - old_logp).exp()  # [N, C]
    a = adv[:, None]  # [N, 1]
    unclipped = ratio * a
    clipped = ratio.clamp(1 - eps, 1 + eps) * a
    loss = -torch.min(unclipped, clipped)  # [N, C]
    was_clipped = clipped < unclipped  # the bound was active (gradient zero there)
    return loss, was_clipped


def token_weights(completion_mask: torch.Tensor, norm: LossNorm, max_new_tokens: int) -> torch.Tensor:
    """Weights [N, C] such that loss = Σ weights·ℓ implements `norm` (padding weighs 0).

    completion_mask: [N, C]. Normalising by the batch, not per micro-batch, keeps gradient
    accumulation exact.
    """
    m = completion_mask.float()  # [N, C]
    n = m.shape[0]
    if norm == "token":  # DAPO's token-level loss [2] §3.3: every token weighs the same
        return m / m.sum().clamp(min=1)
    if norm == "sequence":  # GRPO [1]: 1/G Σ_i 1/|o_i| Σ_t, so a short completion's tokens weigh more
        return m / (m.sum(1, keepdim=True).clamp(min=1) * n)
    if norm == "constant":  # Dr. GRPO [3]: a constant (max_new_tokens) for 1/|o_i|, no length bias
        return m / (n * max_new_tokens)
    raise ValueError(f"unknown loss_norm {norm!r}: choose token, sequence or constant")


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor | None,
    adv: torch.Tensor,
    weights: torch.Tensor,
    *,
    beta: float,
    clip_eps: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted loss of a (micro-)batch and its statistics. logp/old/ref/weights: [N, C]; adv: [N]."""
    per_token, was_clipped = clipped_surrogate(logp, old_logp, adv, clip_eps)  # [N, C]
    stats: dict[str, float] = {}
    mask = weights > 0
    tokens = max(int(mask.sum()), 1)
    if ref_logp is not None and beta > 0:
        kl = k3_kl(logp, ref_logp)  # [N, C]; added to the loss, not to the reward, as in GRPO [1] §4.1.1
        per_token = per_token + beta * kl
        stats["kl"] = float((kl.detach() * mask).sum()) / tokens
    loss = (per_token * weights).sum()
    stats["clip_frac"] = float((was_clipped & mask).sum()) / tokens
    return loss, stats


# -- sequences and log-probabilities ----------------------------------------------------


@dataclass
class RolloutBatch:
    """Sequences to learn from: prompts left-padded, completions right-padded, so completions start at column P."""

    prompt_ids: torch.Tensor  # [N, P]
    prompt_mask: torch.Tensor  # [N, P]
    completion_ids: torch.Tensor  # [N, C]
    completion_mask: torch.Tensor  # [N, C], 1 on sampled tokens (including <eos>)
    advantages: torch.Tensor  # [N]

    @classmethod
    def build(
        cls,
        prompts: Sequence[Sequence[int]],
        completions: Sequence[Sequence[int]],
        advantages: Sequence[float],
        pad: int,
    ) -> RolloutBatch:
        import torch

        n = len(prompts)
        p_len = max(len(p) for p in prompts)
        c_len = max(1, max(len(c) for c in completions))
        prompt_ids = torch.full((n, p_len), pad, dtype=torch.long)
        prompt_mask = torch.zeros((n, p_len), dtype=torch.long)
        completion_ids = torch.full((n, c_len), pad, dtype=torch.long)
        completion_mask = torch.zeros((n, c_len), dtype=torch.long)
        for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
            prompt_ids[i, p_len - len(p) :] = torch.tensor(p, dtype=torch.long)
            prompt_mask[i, p_len - len(p) :] = 1
            completion_ids[i, : len(c)] = torch.tensor(c, dtype=torch.long)
            completion_mask[i, : len(c)] = 1
        return cls(prompt_ids, prompt_mask, completion_ids, completion_mask, torch.tensor(advantages).float())

    def __len__(self) -> int:
        return self.prompt_ids.shape[0]

    def __getitem__(self, rows: slice) -> RolloutBatch:
        return RolloutBatch(
            self.prompt_ids[rows],
            self.prompt_mask[rows],
            self.completion_ids[rows],
            self.completion_mask[rows],
            self.advantages[rows],
        )

    def to(self, device: Any) -> RolloutBatch:
        return RolloutBatch(
            *(
                t.to(device)
                for t in (self.prompt_ids, self.prompt_mask, self.completion_ids, self.completion_mask, self.advantages)
            )
        )

    def micro_batches(self, size: int) -> Iterator[tuple[slice, RolloutBatch]]:
        for start in range(0, len(self), size):
            rows = slice(start, start + size)
            yield rows, self[rows]


def per_token_logps(model: PreTrainedModel, batch: RolloutBatch, temperature: float = 1.0) -> torch.Tensor:
    """log π(completion token | everything before it) [N, C], at the sampling temperature."""
    import torch

    input_ids = torch.cat([batch.prompt_ids, batch.completion_ids], dim=1)  # [N, P+C]
    mask = torch.cat([batch.prompt_mask, batch.completion_mask], dim=1)  # [N, P+C]
    positions = (mask.cumsum(1) - 1).clamp(min=0)  # left padding must not shift positions (as in generate)
    c_len = batch.completion_ids.shape[1]
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=c_len + 1).logits
    logits = logits[:, :-1].float() / max(temperature, 1e-6)  # [N, C, V]: position P-1+t predicts token t
    chosen = logits.gather(-1, batch.completion_ids[..., None]).squeeze(-1)  # [N, C]
    return chosen - logits.logsumexp(-1)  # [N, C]


def _no_grad_logps(
    model: PreTrainedModel, batch: RolloutBatch, temperature: float, micro: int, autocast: Any
) -> torch.Tensor:
    import torch

    with torch.no_grad(), autocast():
        return torch.cat([per_token_logps(model, mb, temperature) for _, mb in batch.micro_batches(micro)])


# -- the update -------------------------------------------------------------------------


@dataclass
class UpdateStats:
    loss: float
    kl: float | None
    clip_frac: float
    grad_norm: float


def update_policy(
    policy: PreTrainedModel,
    optimizer: torch.optim.Optimizer,
    batch: RolloutBatch,
    cfg: GRPOConfig,
    *,
    ref_logps: torch.Tensor | None,
    max_new_tokens: int,
    temperature: float = 1.0,
    autocast: Any = contextlib.nullcontext,
) -> UpdateStats:
    """`cfg.epochs` optimiser steps on `batch`, each accumulating gradients over micro-batches."""
    import torch

    weights = token_weights(batch.completion_mask, cfg.loss_norm, max_new_tokens)  # [N, C]
    old_logps = None  # one epoch: π_old = π, the ratio is 1 (detached), no extra forward pass
    if cfg.epochs > 1:
        old_logps = _no_grad_logps(policy, batch, temperature, cfg.micro_batch_size, autocast)  # [N, C]
    params = [p for p in policy.parameters() if p.requires_grad]
    total, kl_sum, clip_sum, grad_norm = 0.0, 0.0, 0.0, 0.0
    for _ in range(cfg.epochs):
        optimizer.zero_grad(set_to_none=True)
        total, kl_sum, clip_sum = 0.0, 0.0, 0.0
        for rows, mb in batch.micro_batches(cfg.micro_batch_size):
            with autocast():
                logp = per_token_logps(policy, mb, temperature)  # [n, C]
            old = old_logps[rows] if old_logps is not None else logp.detach()
            ref = ref_logps[rows] if ref_logps is not None else None
            loss, stats = grpo_loss(logp, old, ref, mb.advantages, weights[rows], beta=cfg.beta, clip_eps=cfg.clip_eps)
            loss.backward()
            share = float(mb.completion_mask.sum()) / max(float(batch.completion_mask.sum()), 1.0)
            total += float(loss.detach())
            kl_sum += stats.get("kl", 0.0) * share
            clip_sum += stats["clip_frac"] * share
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
        optimizer.step()
    kl = kl_sum if ref_logps is not None and cfg.beta > 0 else None
    return UpdateStats(loss=total, kl=kl, clip_frac=clip_sum, grad_norm=grad_norm)


# -- one GRPO step: sample, verify, update ----------------------------------------------


@dataclass
class Sample:
    """One sampled proof and what the kernel said."""

    problem: str
    proof: str
    reward: float | None  # None: the verifier gave no verdict
    verdict: str
    tokens: int


@dataclass
class StepResult:
    metrics: dict[str, Any]
    samples: list[Sample] = field(default_factory=list)


class GRPOTrainer:
    """Holds the policy, its optimiser, the reference, the generator and the verifier; `step` runs one GRPO step."""

    def __init__(
        self,
        policy: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        generator: Generator,
        verifier: BaseVerifier,
        cfg: GRPOConfig,
        sampling: SamplingConfig,
        *,
        template: str = "plain",
        reference: PreTrainedModel | None = None,
    ):
        import torch

        self.policy = policy
        self.tokenizer = tokenizer
        self.generator = generator
        self.verifier = verifier
        self.cfg = cfg
        self.sampling = sampling
        self.template = template
        self.reference = reference  # None with β>0 and a LoRA policy: the base model with adapters off
        self.device = next(policy.parameters()).device
        params = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.steps_done = 0  # GRPO steps taken (set on resume): drives the warm-up

    def current_lr(self) -> float:
        """`cfg.lr`, ramped linearly over the first `cfg.warmup_steps` steps."""
        if self.cfg.warmup_steps <= 0:
            return self.cfg.lr
        return self.cfg.lr * min(1.0, (self.steps_done + 1) / self.cfg.warmup_steps)

    def autocast(self) -> Any:
        import torch

        if self.device.type == "cuda" and self.cfg.bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def reference_logps(self, batch: RolloutBatch) -> torch.Tensor | None:
        """log π_ref [N, C], or None when β = 0 (no reference model is kept)."""
        if self.cfg.beta <= 0:
            return None
        micro, temp = self.cfg.micro_batch_size, self.sampling.temperature
        if self.reference is not None:
            return _no_grad_logps(self.reference, batch, temp, micro, self.autocast)
        from leangym.agents.models import has_adapter

        if has_adapter(self.policy):  # LoRA: the frozen base is the reference
            with self.policy.disable_adapter():
                return _no_grad_logps(self.policy, batch, temp, micro, self.autocast)
        raise ValueError("beta > 0 needs a reference model (or a LoRA policy)")

    def _rollouts(
        self, problems: Sequence[Problem], n: int, seed: int | None
    ) -> tuple[list[str], list[list[Completion]], list[tuple[Problem, str]], list[Verdict], float, float]:
        """`n` sampled proofs per problem and their verdicts (one verification batch): prompts, the B
        groups of n completions, the B·n (problem, proof) pairs, their verdicts, generate and verify seconds."""
        t0 = time.perf_counter()
        self.verifier.prewarm()  # Lean starts while the model generates
        prompts = [render_prompt(p, self.template, self.tokenizer) for p in problems]
        groups = self.generator.generate(prompts, n, replace(self.sampling, seed=seed))  # B lists of n
        t_gen = time.perf_counter() - t0
        proofs = [[extract_proof(c.text, self.template) for c in group] for group in groups]
        pairs = [(p, proof) for p, row in zip(problems, proofs, strict=True) for proof in row]  # B·n
        t1 = time.perf_counter()
        verdicts = verify_with_retries(self.verifier, pairs, self.cfg.verify_retries)  # `error`: retried, never 0
        return prompts, groups, pairs, verdicts, t_gen, time.perf_counter() - t1

    def evaluate(self, problems: Sequence[Problem], samples: int, seed: int) -> dict[str, float]:
        """Held-out pass@k (k = 1, 2, 4, … up to `samples`) of the current policy; the policy is not changed.

        Proofs are sampled as in training (`sampling`, seeded by `seed`: the same seed at every
        evaluation compares policies, not luck). A sample the verifier gave no verdict is left
        out of its problem's n; a problem with none left is left out.
        """
        *_, verdicts, _, _ = self._rollouts(problems, samples, seed)
        counts = []
        for i in range(len(problems)):
            group = verdicts[i * samples : (i + 1) * samples]
            decided = [v for v in group if v.outcome != "error"]
            if decided:
                counts.append((len(decided), sum(v.proved for v in decided)))
        ks = [k for k in ks_up_to(samples) if all(n >= k for n, _ in counts)]
        return {f"eval_pass@{k}": mean_pass_at_k(counts, k) for k in ks} if counts else {}

    def step(self, problems: Sequence[Problem], seed: int | None = None) -> StepResult:
        """Sample G proofs per problem, verify them in one batch, update the policy once (cfg.epochs steps)."""
        import torch

        g = self.cfg.group_size
        t0 = time.perf_counter()
        prompts, groups, pairs, verdicts, t_gen, t_verify = self._rollouts(problems, g, seed)
        if verdicts and all(v.outcome == "error" for v in verdicts):
            raise RuntimeError(f"the verifier gave no verdict for any sample: {verdicts[0].detail}")

        valid = torch.tensor([v.outcome != "error" for v in verdicts]).view(len(problems), g)  # [B, G]
        rewards = torch.tensor([v.reward for v in verdicts], dtype=torch.float).view(len(problems), g)  # [B, G]
        adv, zero_var = group_advantages(rewards, valid, scale=self.cfg.scale_rewards, eps=self.cfg.adv_eps)

        # Learn only from valid samples of groups with signal (DAPO's dynamic sampling [2] §3.2 filters
        # the same groups, then samples more to refill the batch; here the batch just shrinks).
        completions: list[Completion] = [c for group in groups for c in group]
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        keep = [i for i in range(len(completions)) if valid.view(-1)[i] and not zero_var[i // g]]
        t2 = time.perf_counter()
        update = None
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if keep:
            batch = RolloutBatch.build(
                [prompt_ids[i // g] for i in keep],
                [completions[i].token_ids for i in keep],
                [float(adv.view(-1)[i]) for i in keep],
                self.pad,
            ).to(self.device)
            self.policy.eval()  # no dropout: the ratio must be 1 on the first epoch
            update = update_policy(
                self.policy,
                self.optimizer,
                batch,
                self.cfg,
                ref_logps=self.reference_logps(batch),
                max_new_tokens=self.sampling.max_new_tokens,
                temperature=self.sampling.temperature,
                autocast=self.autocast,
            )
            self.generator.sync_weights(self.policy)
        t_train = time.perf_counter() - t2
        self.steps_done += 1

        n_tokens = sum(len(c.token_ids) for c in completions)
        valid_rewards = rewards[valid]
        solved = ((rewards * valid.float()).sum(1) > 0).float()  # [B]: any sample proved
        metrics = {
            "reward_mean": float(valid_rewards.mean()) if valid_rewards.numel() else math.nan,
            "pass_rate": float(solved.mean()),
            "zero_variance_frac": float(zero_var.float().mean()),
            "kl": update.kl if update else None,
            "loss": update.loss if update else None,
            "clip_frac": update.clip_frac if update else None,
            "grad_norm": update.grad_norm if update else None,
            "lr": lr,
            "trained_samples": len(keep),
            "verifier_errors": int((~valid).sum()),
            "completion_tokens_mean": n_tokens / max(len(completions), 1),
            "tokens_per_s": n_tokens / max(t_gen, 1e-9),
            "generate_s": t_gen,
            "verify_s": t_verify,
            "train_s": t_train,
            "step_s": time.perf_counter() - t0,
        }
        samples = [
            Sample(
                problems[i // g].name,
                pairs[i][1],
                float(rewards.view(-1)[i]) if valid.view(-1)[i] else None,
                verdicts[i].outcome,
                len(completions[i].token_ids),
            )
            for i in range(len(pairs))
        ]
        return StepResult(metrics, samples)
