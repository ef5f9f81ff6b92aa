"""A tiny causal language model with a word-level tokenizer, built on the spot: nothing is downloaded.

The tests and the demo (`model: tiny`) train it with GRPO against the real Lean kernel. A
randomly initialised model knows no Lean and would emit random words, so no sample would
ever be proved and GRPO would see no signal. `build_tiny` therefore gives it a *format
prior* first: a few supervised steps on every (prompt, tactic) pair of a small tactic
vocabulary, all tactics equally, so the model learns to answer with one tactic and stop,
uniformly at random, whatever the problem. It learns nothing about which tactic proves
which problem: that only the kernel's reward can teach it (the stand-in for what a
pretrained prover knows of the format before RL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

TACTICS = ("omega", "decide", "simp", "rfl")  # the closing tactics the tiny model chooses among
SPECIAL_TOKENS = ("<pad>", "<unk>", "<eos>")


def build_tokenizer(
    texts: Sequence[str], words: Sequence[str] = TACTICS, *, min_texts: int = 2
) -> PreTrainedTokenizerBase:
    """A word-level tokenizer: the words of `words`, plus the words found in at least `min_texts` of `texts`.

    Words are split like `\\w+|[^\\w\\s]+`; any other word becomes `<unk>` (so a theorem's own
    name does not identify it: the model has to go by the statement). Decoding joins words
    with spaces, which Lean reads the same. Ids are sorted, so the tokenizer is deterministic.
    """
    from collections import Counter

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    splitter = pre_tokenizers.Whitespace()
    counts = Counter(w for text in texts for w in {w for w, _ in splitter.pre_tokenize_str(text)})
    seen = {w for w, n in counts.items() if n >= min_texts} | {
        w for word in words for w, _ in splitter.pre_tokenize_str(word)
    }
    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *sorted(seen - set(SPECIAL_TOKENS))])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = splitter
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")


def build_model(
    tokenizer: PreTrainedTokenizerBase, *, layers: int = 2, hidden: int = 64, heads: int = 4, seed: int = 0
) -> PreTrainedModel:
    """A randomly initialised Qwen2-architecture model sized for `tokenizer` (~100k parameters)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=512,
        tie_word_embeddings=False,  # the format prior trains the output layer alone (see teach_format)
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config)


def teach_format(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    answers: Sequence[str] = TACTICS,
    *,
    steps: int = 200,
    lr: float = 3e-2,
) -> float:
    """Fit the output layer so that every prompt is followed by each answer equally, then `<eos>`; return the loss.

    The optimum is the uniform distribution over `answers` after any prompt: the model learns
    the answer format and nothing about which answer is right. Only the output layer is
    trained, on the frozen random body's features: those still differ from prompt to prompt,
    so GRPO can later make the choice depend on the problem.
    """
    import torch
    import torch.nn.functional as F

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    pairs = [(ids(p), [*ids(a), tokenizer.eos_token_id]) for p in prompts for a in answers]  # (prompt, target)
    width = max(len(p) + len(t) for p, t in pairs)
    input_ids = torch.full((len(pairs), width), tokenizer.pad_token_id)  # [R, W], right-padded
    labels = torch.full((len(pairs), width), -100)  # [R, W]: loss only on the answer and <eos>
    mask = torch.zeros((len(pairs), width), dtype=torch.long)  # [R, W]
    for i, (p, t) in enumerate(pairs):
        input_ids[i, : len(p) + len(t)] = torch.tensor(p + t)
        labels[i, len(p) : len(p) + len(t)] = torch.tensor(t)
        mask[i, : len(p) + len(t)] = 1
    with torch.no_grad():
        hidden = model.model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # [R, W, H]
    head = model.get_output_embeddings()
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        logits = head(hidden[:, :-1])  # [R, W-1, V]: position t predicts token t+1
        loss = F.cross_entropy(logits.flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


def build_tiny(
    prompts: Sequence[str], *, tactics: Sequence[str] = TACTICS, seed: int = 0, **model_options: int
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The tiny policy for these prompts: tokenizer, random model, format prior. Deterministic in `seed`."""
    import torch

    tokenizer = build_tokenizer(prompts, tactics)
    model = build_model(tokenizer, seed=seed, **model_options)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        teach_format(model, tokenizer, prompts, tactics)
    return model.eval(), tokenizer


def tool_call(name: str, **arguments: str) -> str:
    """One tool call as Qwen's chat template writes it (the format TRL parses tool calls from)."""
    import json

    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def build_tiny_agent(
    statements: Sequence[str], environment: object, actions: Sequence[str], *, seed: int = 0
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A tiny tool-calling policy for TRL's `environment_factory`: each of `actions` (whole tool calls,
    `tool_call(...)`) is one token, and the format prior makes the model answer any prompt with one of
    them uniformly at random, as a pretrained agent would answer in the tool format before RL.

    The tokenizer carries Qwen 2.5's chat template (the one TRL knows how to read tool calls
    from), with the public methods of `environment` as the tools in every prompt.
    """
    import inspect

    import torch
    from tokenizers import AddedToken
    from transformers.utils import get_json_schema
    from trl.chat_template_utils import qwen2_5_chat_template

    tokenizer = build_tokenizer(statements, ())
    tokenizer.add_special_tokens({"eos_token": "<|im_end|>", "additional_special_tokens": ["<|im_start|>"]})
    tokenizer.add_tokens([AddedToken(a, normalized=False, special=False) for a in actions])
    tokenizer.chat_template = qwen2_5_chat_template
    tools = [  # as TRL finds them: the public functions of the class (not its properties), but for its hooks
        get_json_schema(getattr(environment, name))
        for name, _ in inspect.getmembers(type(environment), predicate=inspect.isfunction)
        if not name.startswith("_") and name not in ("reset", "get_reward")
    ]
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": s}], tools=tools, add_generation_prompt=True, tokenize=False
        )
        for s in statements
    ]
    model = build_model(tokenizer, seed=seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        teach_format(model, tokenizer, prompts, actions)
    return model.eval(), tokenizer
