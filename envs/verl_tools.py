"""verl's multi-turn tools (`BaseTool`) over the same episodes as the TRL environments.

verl's `ToolAgentLoop` reads a tool config (`actor_rollout_ref.rollout.multi_turn.tool_config_path`)
and, for *every* tool call, runs `create(create_kwargs=…)`, `execute(instance_id, arguments,
agent_data=…)` and `release(instance_id)`. A proof episode spans many calls, so `LeanTool` keeps
one episode (`ProofRevisionEnv` or `TacticAgentEnv` of `envs/agentic.py`, the TRL environments)
per trajectory, made at that trajectory's first call from the sample's
`tools_kwargs.<tool>.create_kwargs` (its `formal_statement`, `header`, `name`). A trajectory is
verl's `AgentData` object of one rollout, held weakly: its episode ends with it. (Not its
`request_id`: under `full_determinism` the ids repeat at every step, and an episode keyed by one
would carry a finished check budget, or another sample's problem, into the next step.)

    # tools.yaml (docs/examples/verl_tools.yaml): one entry per tool, the schema comes from its docstring
    tools:
      - class_name: leangym.envs.verl_tools.LeanTool
        config: {type: native, tool: check_proof, max_checks: 4}
      - class_name: leangym.envs.verl_tools.LeanTool
        config: {type: native, tool: submit_proof}

Rewards. `execute` returns the episode's reward when the call ends it (a submitted proof, or the
last goal closed: 1.0 only for a trusted `proved` verdict) and 0.0 before; verl appends these to
the trajectory's `tool_rewards`, which its reward loop hands to the score function in
`extra_info`: set `custom_reward_function.path` to this file and `name` to `tool_score`. A verdict
`error` (Lean itself failed) is NaN there, and `tool_score` raises rather than score it 0. The
call that ends an episode also writes the final proof and its reward into the trajectory's
`extra_fields` (`lean_proof`, `lean_reward`), which verl keeps beside the rollout.

This module imports verl: it is loaded by verl's tool registry, in an environment that has verl
(`make test-verl` builds one: verl pins an older transformers than TRL).
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from transformers.utils import get_json_schema
from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from leangym.envs.agentic import ProofRevisionEnv, TacticAgentEnv
from leangym.rewards.adapters import VerifierUnavailable
from leangym.rewards.policy import Policy

Episode = ProofRevisionEnv | TacticAgentEnv

# Each tool: the episode type it acts on, and the method it calls (its docstring is the tool's schema).
TOOLS: dict[str, tuple[type[Episode], Callable[..., str]]] = {
    "check_proof": (ProofRevisionEnv, ProofRevisionEnv.check_proof),
    "submit_proof": (ProofRevisionEnv, ProofRevisionEnv.submit_proof),
    "run_tactic": (TacticAgentEnv, TacticAgentEnv.run_tactic),
    "goals": (TacticAgentEnv, TacticAgentEnv.goals),
    "backtrack": (TacticAgentEnv, TacticAgentEnv.backtrack),
}


class Episodes:
    """The live episodes of this process, one per (trajectory, episode type), shared by the tools of a
    mode (`check_proof` and `submit_proof` act on one episode). A trajectory is any object that
    stands for one rollout (verl's `AgentData`); it is held weakly, so its episodes go with it."""

    def __init__(self) -> None:
        self._episodes: weakref.WeakKeyDictionary[Any, dict[type[Episode], tuple[Episode, threading.Lock]]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self, trajectory: Any, kind: type[Episode], make: Callable[[], Episode]) -> tuple[Episode, threading.Lock]:
        """The episode of `trajectory`, made by `make` at its first call (outside the lock: it runs Lean)."""
        with self._lock:
            found = self._episodes.get(trajectory, {}).get(kind)
        if found is None:
            made = (make(), threading.Lock())
            with self._lock:
                found = self._episodes.setdefault(trajectory, {}).setdefault(kind, made)
        return found

    def find(self, trajectory: Any, kind: type[Episode]) -> Episode | None:
        with self._lock:
            found = self._episodes.get(trajectory, {}).get(kind)
        return None if found is None else found[0]


EPISODES = Episodes()


class _Lone:
    """The trajectory of a call made outside one (no `agent_data`): the episode lasts that call."""


@dataclass
class _Call:
    """One tool call between `create` and `release`: the sample's row and the trajectory it belongs to."""

    row: Mapping[str, Any]
    trajectory: Any = field(default_factory=_Lone)  # verl's AgentData (held weakly by EPISODES)
    fields: dict[str, Any] | None = None  # the trajectory's `extra_fields` (verl's tool session data)


def schema_of(tool: str) -> OpenAIFunctionToolSchema:
    """The tool's OpenAI function schema, read from its method's signature and `Args:` docstring."""
    _, method = TOOLS[tool]
    bound = method.__get__(object())  # bound to a placeholder: the schema's parameters leave out `self`
    return OpenAIFunctionToolSchema.model_validate(get_json_schema(bound))


class LeanTool(BaseTool):
    """One of `TOOLS` as a verl tool. Config: `tool` (which), `runtime` (default `embedded`, or a
    server's URL), `policy` (`Policy`'s fields), `max_checks` (proof mode, 4), `max_steps` (tactic mode, 16)."""

    def __init__(self, config: dict[str, Any], tool_schema: OpenAIFunctionToolSchema | None = None) -> None:
        tool = config.get("tool") or (tool_schema.function.name if tool_schema is not None else None)
        if tool not in TOOLS:
            raise ValueError(f"LeanTool's config needs `tool`: one of {', '.join(TOOLS)} (got {tool!r})")
        self.tool = tool
        self.kind, self.method = TOOLS[tool]
        super().__init__(config, tool_schema or schema_of(tool))
        self.runtime = str(config.get("runtime", "embedded"))
        self.policy = Policy.from_json(config["policy"]) if config.get("policy") else None
        self.budget = (
            {"max_checks": int(config.get("max_checks", 4))}
            if self.kind is ProofRevisionEnv
            else {"max_steps": int(config.get("max_steps", 16))}
        )
        self._calls: dict[str, _Call] = {}  # instance id -> the call

    def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
        return schema_of(self.tool)

    async def create(self, instance_id: str | None = None, **kwargs: Any) -> tuple[str, ToolResponse]:
        """A call begins: remember the sample (`create_kwargs`) it belongs to."""
        instance_id = instance_id or uuid4().hex
        self._calls[instance_id] = _Call(dict(kwargs.get("create_kwargs") or {}))
        return instance_id, ToolResponse()

    async def execute(
        self, instance_id: str, parameters: dict[str, Any], **kwargs: Any
    ) -> tuple[ToolResponse, float, dict[str, Any]]:
        """Run the tool on this trajectory's episode (in a thread: Lean blocks, verl's loop must not)."""
        call = self._calls.setdefault(instance_id, _Call({}))
        if kwargs.get("agent_data") is not None:
            call.trajectory, call.fields = kwargs["agent_data"], kwargs["agent_data"].extra_fields
        if not isinstance(parameters, Mapping):
            return ToolResponse(text=f"The arguments of {self.tool} must be a JSON object."), 0.0, {}
        return await asyncio.to_thread(self._run, call, parameters)

    def _run(self, call: _Call, parameters: Mapping[str, Any]) -> tuple[ToolResponse, float, dict[str, Any]]:
        try:
            episode, lock = EPISODES.get(call.trajectory, self.kind, lambda: self._start(call.row))
        except Exception as e:  # an unusable sample: the agent reads why, the rollout goes on
            return ToolResponse(text=f"The tool failed: {type(e).__name__}: {e}"), 0.0, {"started": False}
        with lock:
            over = episode.ended
            text = self.method(episode, **parameters)  # a tool answers its failures as text (`agentic.tool`)
            ends = not over and episode.ended
            reward = episode.get_reward() if ends else 0.0
        if ends and call.fields is not None:  # the final proof and its reward, kept by verl beside the rollout
            call.fields.update(lean_proof=episode.final_proof, lean_reward=reward)
        return ToolResponse(text=text), math.nan if reward is None else reward, {"ends_episode": ends}

    def _start(self, row: Mapping[str, Any]) -> Episode:
        episode = self.kind(self.runtime, self.policy, **self.budget)
        episode.reset(**row)
        return episode

    async def calc_reward(self, instance_id: str, **kwargs: Any) -> float:
        """The trajectory's reward so far (verl's loop does not call it; `tool_score` reads the step rewards)."""
        call = self._calls.get(instance_id)
        episode = None if call is None else EPISODES.find(call.trajectory, self.kind)
        reward = None if episode is None else episode.get_reward()
        return math.nan if reward is None else reward

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        """A call ends; the episode stays with its trajectory for the next call."""
        self._calls.pop(instance_id, None)


def tool_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None, **kw: Any
) -> float:
    """verl's score of a multi-turn trajectory: the reward its Lean tools gave (1.0 for a trusted
    `proved` at the end of the episode, else 0.0). A Lean failure raises, never scores 0."""
    rewards = list((extra_info or {}).get("tool_rewards") or [])
    if any(math.isnan(r) for r in rewards):
        raise VerifierUnavailable("Lean could not judge a proof of this trajectory")
    return max(rewards, default=0.0)
