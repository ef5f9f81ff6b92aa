"""Prompt templates, proof extraction and the transformers generator, on a tiny local model (no Lean, no download)."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch

from leangym.agents.generation import (
    HFGenerator,
    SamplingConfig,
    inference_state_dict,
    make_generator,
    vllm_available,
)
from leangym.agents.grpo import RolloutBatch, per_token_logps
from leangym.agents.models import load_tokenizer
from leangym.agents.prompts import DEFAULT_STOP, extract_proof, render_prompt
from leangym.agents.tiny import TACTICS, build_tiny
from leangym.rewards import Problem

PROBLEM = Problem(
    name="toy_x",
    formal_statement="theorem toy_x (a b : Nat) (h : a + 2 ≤ b) : a < b := by",
    header="set_option autoImplicit false",
    informal_statement="/-- If a + 2 ≤ b then a < b. -/",
)


@pytest.fixture(scope="module")
def tiny():
    prompts = [render_prompt(PROBLEM, "plain"), "theorem toy_y (xs : List Nat) : xs ++ [] = xs := by\n  "]
    return build_tiny(prompts, seed=0)


# -- templates and extraction -----------------------------------------------------------


def test_importing_prompts_and_generation_loads_no_heavy_library():
    """vLLM (and torch, transformers) load only when a back-end is used: `leangym --help` stays fast."""
    code = (
        "import sys, leangym.agents.prompts, leangym.agents.generation; "
        "print(sorted(m for m in ('vllm', 'torch', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_plain_prompt_continues_the_file():
    prompt = render_prompt(PROBLEM, "plain")
    assert prompt == (
        "set_option autoImplicit false\n/-- If a + 2 ≤ b then a < b. -/\n"
        "theorem toy_x (a b : Nat) (h : a + 2 ≤ b) : a < b := by\n  "
    )


def test_fence_prompt_is_deepseek_style():
    prompt = render_prompt(PROBLEM, "fence")
    assert prompt.startswith("Complete the following Lean 4 code:\n\n```lean4\nset_option autoImplicit false\n")
    assert prompt.endswith(":= by")
    assert DEFAULT_STOP["fence"] == ("```",)


def test_chat_prompt_needs_a_chat_template(tiny):
    _, tokenizer = tiny
    with pytest.raises(ValueError, match="chat template"):
        render_prompt(PROBLEM, "chat", tokenizer)
    with pytest.raises(ValueError, match="unknown template"):
        render_prompt(PROBLEM, "alpaca")


def test_saved_tiny_tokenizer_loads_as_it_was(tiny, tmp_path):
    """transformers 5's AutoTokenizer would rebuild it as a Qwen2Tokenizer and split text otherwise."""
    tiny[1].save_pretrained(tmp_path)
    loaded = load_tokenizer(str(tmp_path))
    text = render_prompt(PROBLEM, "plain") + "omega"
    assert loaded(text)["input_ids"] == tiny[1](text)["input_ids"]
    assert loaded.pad_token_id == tiny[1].pad_token_id and loaded.eos_token_id == tiny[1].eos_token_id


def test_chat_prompt_uses_the_models_template(tiny, tmp_path):
    tiny[1].save_pretrained(tmp_path)
    tokenizer = load_tokenizer(str(tmp_path))
    tokenizer.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    prompt = render_prompt(PROBLEM, "chat", tokenizer)
    assert prompt.startswith("<user>Complete the following Lean 4 proof.")
    assert PROBLEM.formal_statement in prompt and prompt.endswith("<assistant>")


@pytest.mark.parametrize(
    ("template", "completion", "body"),
    [
        ("plain", "omega", "omega"),
        ("plain", "intro h\n  simp at h\n  omega\n\ntheorem next : True := trivial", "intro h\nsimp at h\nomega"),
        ("plain", "omega\ntheorem next : True := trivial", "omega"),  # a column-0 command ends it
        ("fence", "\n  constructor\n  · omega\n  · simp\n```\nMore text", "constructor\n· omega\n· simp"),
        ("fence", " omega\n```", "omega"),
        ("fence", "\nomega\nsimp", "omega\nsimp"),  # written at column 0: still the block
        ("chat", "Here:\n```lean4\n  omega\n```\nDone.", "omega"),
        ("chat", "```lean\ntheorem toy_x (a b : Nat) : a < b := by\n  simp\n  omega\n```", "simp\nomega"),
        ("chat", "no code block, just omega", "no code block, just omega"),
        ("plain", "", ""),
    ],
)
def test_extract_proof(template, completion, body):
    assert extract_proof(completion, template) == body


# -- the transformers generator ---------------------------------------------------------


def test_generator_shapes_and_eos(tiny):
    model, tokenizer = tiny
    prompts = [render_prompt(PROBLEM, "plain"), "theorem toy_y (xs : List Nat) : xs ++ [] = xs := by\n  "]
    groups = HFGenerator(model, tokenizer).generate(prompts, 5, SamplingConfig(max_new_tokens=4, seed=1))
    assert [len(g) for g in groups] == [5, 5]
    for completion in (c for g in groups for c in g):
        assert 1 <= len(completion.token_ids) <= 4
        assert completion.text.split()[0] in TACTICS  # the format prior: a tactic first
        if completion.finish_reason == "stop":
            assert completion.token_ids[-1] == tokenizer.eos_token_id
        assert completion.logprobs is None


def test_generator_is_reproducible_with_a_seed(tiny):
    model, tokenizer = tiny
    gen = HFGenerator(model, tokenizer, batch_size=4)  # 2 prompts x 2 samples per call
    prompts = [render_prompt(PROBLEM, "plain")] * 3
    sampling = SamplingConfig(max_new_tokens=3, seed=7)
    first = gen.generate(prompts, 2, sampling)
    assert first == gen.generate(prompts, 2, sampling)
    other = gen.generate(prompts, 2, SamplingConfig(max_new_tokens=3, seed=8))
    assert [len(g) for g in other] == [2, 2, 2]
    assert other != first  # the seed is what fixed the samples: another one samples others


def test_stop_strings_cut_text_and_keep_the_stop_token(tiny):
    model, tokenizer = tiny
    gen = HFGenerator(model, tokenizer)
    prompt = render_prompt(PROBLEM, "plain")
    free = gen.generate([prompt], 16, SamplingConfig(max_new_tokens=1, seed=0))[0]
    stop_word = free[0].text  # the first tactic sampled with this seed
    cut = gen.generate([prompt], 16, SamplingConfig(max_new_tokens=1, seed=0, stop=(stop_word,)))[0]
    for before, after in zip(free, cut, strict=True):
        assert before.token_ids == after.token_ids  # the stop token is kept for training
        if before.text == stop_word:
            assert after.text == "" and after.finish_reason == "stop"
        else:
            assert after.text == before.text


def test_sampling_logprobs_match_the_trainers(tiny):
    """The trainer recomputes log π at the sampling temperature: it must agree with what was sampled."""
    model, tokenizer = tiny
    prompt = render_prompt(PROBLEM, "plain")
    sampling = SamplingConfig(temperature=0.7, max_new_tokens=3, seed=3, logprobs=True)
    group = HFGenerator(model, tokenizer).generate([prompt], 4, sampling)[0]
    prompt_ids = tokenizer(prompt)["input_ids"]
    batch = RolloutBatch.build([prompt_ids] * 4, [c.token_ids for c in group], [0.0] * 4, tokenizer.pad_token_id)
    with torch.no_grad():
        trainer = per_token_logps(model, batch, temperature=0.7)
    for i, c in enumerate(group):
        assert c.logprobs is not None and len(c.logprobs) == len(c.token_ids)
        assert list(c.logprobs) == pytest.approx(trainer[i, : len(c.token_ids)].tolist(), abs=1e-4)


def test_greedy_is_deterministic(tiny):
    model, tokenizer = tiny
    gen = HFGenerator(model, tokenizer)
    prompt = render_prompt(PROBLEM, "plain")
    a = gen.generate([prompt], 3, SamplingConfig(temperature=0, max_new_tokens=2))[0]
    assert len({c.token_ids for c in a}) == 1


def test_make_generator_picks_transformers_without_a_gpu(tiny):
    model, tokenizer = tiny
    if vllm_available():
        pytest.skip("vLLM and a GPU are present")
    assert make_generator(model, tokenizer, "auto", model_path="unused").name == "transformers"
    with pytest.raises(RuntimeError, match=r"\[gpu\] extra"):
        make_generator(model, tokenizer, "vllm", model_path="unused")
    with pytest.raises(ValueError, match="backend"):
        make_generator(model, tokenizer, "tgi")


def test_inference_state_dict_is_the_model_state(tiny):
    model, _ = tiny
    state = inference_state_dict(model)
    assert state.keys() == model.state_dict().keys()


def test_inference_state_dict_merges_lora(tiny):
    peft = pytest.importorskip("peft", reason="the [lora] extra (peft) is not installed")
    base = copy.deepcopy(tiny[0])
    lora = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    for name, p in lora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)  # B starts at 0: make the adapter do something
    state = inference_state_dict(lora)
    assert state.keys() == tiny[0].state_dict().keys()  # base names: what vLLM's load_weights reads
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(state[q], tiny[0].state_dict()[q])  # the adapter is merged in
    # the trainer's copy is left unmerged
    unmerged = lora.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight
    assert torch.allclose(unmerged, tiny[0].state_dict()[q])
