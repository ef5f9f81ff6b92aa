"""Prompts and proofs: what the model is asked, and what of its answer the verifier checks.

`render_prompt` writes a problem as a prompt in one of the `TEMPLATES`; `DEFAULT_STOP` says
where each template's completion ends; `extract_proof` turns a completion into the proof
body the verifier checks; `encode_prompts` gives the prompt token ids that both generation
back-ends (agents/generation.py) and the trainer use, so they all see the same input.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, get_args

from leangym.lean_project.source import starts_command

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from leangym.rewards.problem import Problem

Template = Literal["plain", "fence", "chat"]
TEMPLATES: tuple[str, ...] = get_args(Template)
_PLAIN_INDENT = "  "  # the plain template leaves the cursor indented inside the `by` block

# Where a completion ends, per template (overridable with SamplingConfig.stop).
DEFAULT_STOP: dict[str, tuple[str, ...]] = {
    "plain": ("\n\n", "```"),  # a blank line or a fence ends a continued proof
    "fence": ("```",),  # DeepSeek-Prover style: the model closes the code block
    "chat": (),  # the chat template's end-of-turn token is the model's <eos>
}


def _code(problem: Problem) -> str:
    header = problem.header.strip()
    return "\n".join(part for part in (header, problem.informal_statement.strip(), problem.formal_statement) if part)


def chat_request(problem: Problem) -> str:
    """The user message of the `chat` template: the code, and where the proof goes."""
    return (
        "Complete the following Lean 4 proof. Reply with the tactics that follow `:= by`, "
        f"in one ```lean4 code block.\n\n```lean4\n{_code(problem)}\n```"
    )


def render_prompt(problem: Problem, template: str, tokenizer: PreTrainedTokenizerBase | None = None) -> str:
    """The prompt for `problem`. `plain` continues the Lean file; `fence` is DeepSeek-Prover's; `chat` asks."""
    code = _code(problem)
    if template == "plain":
        return f"{code}\n{_PLAIN_INDENT}"
    if template == "fence":
        return f"Complete the following Lean 4 code:\n\n```lean4\n{code}"
    if template == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("template 'chat' needs a tokenizer with a chat template; use 'plain' or 'fence'")
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": chat_request(problem)}], tokenize=False, add_generation_prompt=True
        )
    raise ValueError(f"unknown template {template!r}: choose one of {', '.join(TEMPLATES)}")


def extract_proof(completion: str, template: str) -> str:
    """The proof body a completion gives, dedented, ready for the verifier.

    The text is cut at a code fence, and at the first later line that leaves the `by`
    block: indented less than the first line, or a new command at column 0. With `chat`,
    the body is the first code block's content, after `:= by` if the model restated the
    theorem.
    """
    text = completion
    if template == "chat":
        fence = text.find("```")
        if fence >= 0:
            start = text.find("\n", fence)
            text = text[start + 1 :] if start >= 0 else ""
        if ":= by" in text.split("```", 1)[0]:
            text = text.split(":= by", 1)[1]
    elif template == "plain":
        text = _PLAIN_INDENT + text
    text = text.split("```", 1)[0]
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return ""
    first_indent = _indent(lines[0])
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip():
            indent = _indent(line)
            if indent < first_indent or (indent == 0 and starts_command(line)):
                break
        kept.append(line)
    return textwrap.dedent("\n".join(kept)).strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of each prompt; special tokens are added only when the text does not already start with BOS."""
    bos = tokenizer.bos_token
    return [
        tokenizer(p, add_special_tokens=not (bos and p.startswith(bos)))["input_ids"]  # chat templates write BOS
        for p in prompts
    ]
