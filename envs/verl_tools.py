"""verl's multi-turn tools (`BaseTool`) over the same episodes as the TRL environments.

verl's `ToolAgentLoop` reads a tool config (`actor_rollout_ref.rollout.multi_turn.tool_config_path`)
and, for *every* tool call, runs `create(create_kwargs=…)`, `execute(instance_id, arguments,
agent_data=…)` and `release(instance_id)`. A proof episode spans many calls, so `LeanTool` keeps
one episode (`ProofRevisionEnv` or `TacticAgentEnv` of `envs/agentic.py`, the TRL environments)
per trajectory, keyed by verl's `agent_data.request_id`, and made at that trajectory's first call
from the sample's `tools_kwargs.<tool>.create_kwargs` (its `formal_statement`, `header`, `name`).

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
`error` (Lean itself failed) is NaN there, and `tool_score` raises rather than score it 0.

This module imports verl: it is loaded by verl's tool registry, in an environment that has verl
(`make test-verl` builds one: verl pins an older transformers than TRL).
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
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
    """The live episodes of this process, one per (episode type, trajectory), shared by the tools
    of a mode (`check_proof` and `submit_proof` act on one episode). The oldest go beyond `limit`:
    verl does not say when a trajectory ends."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._episodes: OrderedDict[tuple[type[Episode], str], tuple[Episode, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, kind: type[Episode], key: str, make: Callable[[], Episode]) -> tuple[Episode, threading.Lock]:
        """The episode of trajectory `key`, made by `make` at its first call (outside the lock: it runs Lean)."""
        with self._lock:
            found = self._episodes.get((kind, key))
        if found is None:
            made = (make(), threading.Lock())
            with self._lock:
                found = self._episodes.setdefault((kind, key), made)
                while len(self._episodes) > self.limit:
                    self._episodes.popitem(last=False)
        with self._lock:
            if (kind, key) in self._episodes:
                self._episodes.move_to_end((kind, key))
        return found

    def find(self, kind: type[Episode], key: str) -> Episode | None:
        with self._lock:
            found = self._episodes.get((kind, key))
            return None if found is None else found[0]


EPISODES = Episodes()


def schema_of(tool: str) -> OpenAIFunctionToolSchema:
    """The tool's OpenAI function schema, read from its method's signature and `Args:` docstring."""
    _, method = TOOLS[tool]
    return OpenAIFunctionToolSchema.model_validate(get_json_schema(method.__get__(object())))


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
        self._rows: dict[str, Mapping[str, Any]] = {}  # instance id -> the sample's create_kwargs
        self._trajectory: dict[str, str] = {}  # instance id -> the episode's key

    def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
        return schema_of(self.tool)

    async def create(self, instance_id: str | None = None, **kwargs: Any) -> tuple[str, ToolResponse]:
        """A call begins: remember the sample (`create_kwargs`) it belongs to."""
        instance_id = instance_id or uuid4().hex
        self._rows[instance_id] = dict(kwargs.get("create_kwargs") or {})
        return instance_id, ToolResponse()

    async def execute(
        self, instance_id: str, parameters: dict[str, Any], **kwargs: Any
    ) -> tuple[ToolResponse, float, dict[str, Any]]:
        """Run the tool on this trajectory's episode (in a thread: Lean blocks, verl's loop must not)."""
        agent_data = kwargs.get("agent_data")
        key = str(agent_data.request_id) if agent_data is not None else instance_id
        self._trajectory[instance_id] = key
        row = self._rows.get(instance_id, {})
        return await asyncio.to_thread(self._run, key, row, parameters)

    def _run(
        self, key: str, row: Mapping[str, Any], parameters: Mapping[str, Any]
    ) -> tuple[ToolResponse, float, dict[str, Any]]:
        try:
            episode, lock = EPISODES.get(self.kind, key, lambda: self._start(row))
        except Exception as e:  # a sample without a statement: the agent reads why, the rollout goes on
            return ToolResponse(text=f"The tool failed: {type(e).__name__}: {e}"), 0.0, {"started": False}
        with lock:
            over = episode.ended
            text = self.method(episode, **parameters)  # a tool answers its failures as text (`agentic.tool`)
            ends = not over and episode.ended
            reward = episode.get_reward() if ends else 0.0
        return ToolResponse(text=text), math.nan if reward is None else reward, {"ends_episode": ends}

    def _start(self, row: Mapping[str, Any]) -> Episode:
        episode = self.kind(self.runtime, self.policy, **self.budget)
        episode.reset(**row)
        return episode

    async def calc_reward(self, instance_id: str, **kwargs: Any) -> float:
        """The trajectory's reward so far (verl's loop does not call it; `tool_score` reads the step rewards)."""
        episode = EPISODES.find(self.kind, self._trajectory.get(instance_id, instance_id))
        reward = None if episode is None else episode.get_reward()
        return math.nan if reward is None else reward

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        """A call ends; the episode stays for the trajectory's next call."""
        self._rows.pop(instance_id, None)
        self._trajectory.pop(instance_id, None)


def tool_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None, **kw: Any
) -> float:
    """verl's score of a multi-turn trajectory: the reward its Lean tools gave (1.0 for a trusted
    `proved` at the end of the episode, else 0.0). A Lean failure raises, never scores 0."""
    rewards = list((extra_info or {}).get("tool_rewards") or [])
    if any(math.isnan(r) for r in rewards):
        raise VerifierUnavailable("Lean could not judge a proof of this trajectory")
    return max(rewards, default=0.0)
