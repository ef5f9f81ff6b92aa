"""`leangym/LeanTactic-v0` with the real embedded Lean: a held-aside theorem proved step by step.

The walk-through (one module fixture) costs six Lean runs: the initial state, two node
expansions (`try_tactics`, several tactics per run), one step, and the last step with the
verifier's check of the whole proof. Every other step it takes is answered from the tactic
cache, which is how a search agent's backtracking costs nothing. `check_env` adds a few runs
for its random tactics.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import networkx as nx
import pytest
from gymnasium.utils.env_checker import check_env

from leangym.envs.tactic_env import LeanTacticEnv, proof_statement
from leangym.lean_project import LeanRuntime, get_runtime
from leangym.lean_project.tactics import ElaborationTactics
from leangym.rewards import Problem, get_verifier

HEADER = "set_option autoImplicit false\n"
HELD = Problem("lg_held_zero_add", "theorem lg_held_zero_add : ∀ n : Nat, 0 + n = n := by", HEADER)
ROOT_GOALS = ("⊢ ∀ (n : Nat), 0 + n = n",)
INTRO_GOALS = ("n : Nat\n⊢ 0 + n = n",)


@pytest.fixture(scope="module", autouse=True)
def shared(lean: LeanRuntime) -> LeanRuntime:
    """Make the session's runtime the one `runtime="embedded"` envs share (`rewards.get_verifier`)."""
    get_verifier(lean)
    return lean


@pytest.fixture(scope="module")
def walk(lean: LeanRuntime) -> dict:
    """Prove HELD: expand the root, fail, step, expand, backtrack, finish. Everything seen, in order."""
    env = gym.make("leangym/LeanTactic-v0", problems=[HELD], render_mode="ansi")
    tactic_env: LeanTacticEnv = env.unwrapped
    seen: dict = {"env": env, "runs": {}}

    def runs(label: str, before: int) -> None:
        seen["runs"][label] = lean.lean_batches - before

    before = lean.lean_batches
    seen["reset"] = env.reset(seed=0)
    root = seen["reset"][1]["state_id"]
    runs("reset", before)

    before = lean.lean_batches
    seen["root_expansion"] = tactic_env.try_tactics(root, ["intro n", "exact foo", "intro n\ninduction n"])
    runs("root_expansion", before)

    before = lean.lean_batches
    seen["failed"] = env.step("exact foo")  # answered from the expansion: no Lean run
    seen["intro"] = env.step("intro n")
    runs("cached_steps", before)

    before = lean.lean_batches
    seen["induction"] = env.step("induction n")
    runs("induction", before)

    before = lean.lean_batches
    cases = seen["induction"][4]["state_id"]
    seen["case_expansion"] = tactic_env.try_tactics(cases, ["simp", "omega", "rfl", "sorry", "all_goals admit"])
    runs("case_expansion", before)

    before = lean.lean_batches
    seen["goto"] = tactic_env.goto(seen["intro"][4]["state_id"])  # backtrack to after `intro n`
    seen["induction_again"] = env.step("induction n")
    seen["simp"] = env.step("simp")
    seen["render"] = env.render()
    runs("after_backtrack", before)

    before = lean.lean_batches
    seen["omega"] = env.step("omega")
    runs("omega", before)
    return seen


def test_reset_observes_the_goal_as_lean_prints_it(walk: dict) -> None:
    obs, info = walk["reset"]
    assert obs["goals"] == ROOT_GOALS[0] and obs["tactics"] == ""
    assert obs["formal_statement"] == HELD.formal_statement and info["problem"] == HELD.name
    assert walk["env"].observation_space.contains(obs)


def test_a_failed_tactic_leaves_the_state_unchanged(walk: dict) -> None:
    obs, reward, terminated, truncated, info = walk["failed"]
    assert obs["goals"] == ROOT_GOALS[0] and info["state_id"] == walk["reset"][1]["state_id"]
    assert reward == 0.0 and not terminated and not truncated
    assert "Unknown identifier `foo`" in info["error"]
    assert info["messages"][0]["pos"] == {"line": 1, "column": 6}  # in the tactic's own text


def test_steps_move_through_the_proof(walk: dict) -> None:
    obs, _, _, _, info = walk["intro"]
    assert obs["goals"] == INTRO_GOALS[0] and obs["tactics"] == "  intro n" and info["error"] == ""
    obs, reward, terminated, _, _ = walk["induction"]
    assert (
        obs["goals"].startswith("case zero\n⊢ 0 + 0 = 0\n\ncase succ\n") and "⊢ 0 + (n✝ + 1) = n✝ + 1" in obs["goals"]
    )
    assert reward == 0.0 and not terminated


def test_expansion_runs_every_candidate_in_one_lean_run(walk: dict) -> None:
    assert walk["runs"]["root_expansion"] == 1 and walk["runs"]["case_expansion"] == 1
    intro, foo, both = walk["root_expansion"]
    assert intro.goals == INTRO_GOALS and foo.failed and "foo" in foo.error and foo.infra is None
    assert (intro.tactic, foo.tactic) == ("intro n", "exact foo") and intro.verdict is None
    assert both.state_id == walk["induction"][4]["state_id"]  # two paths, one state


def test_sorry_and_admit_never_close_a_goal(walk: dict) -> None:
    simp, omega, rfl, sorry, admit = walk["case_expansion"]
    assert sorry.failed and "sorry" in sorry.error and admit.failed and "sorry" in admit.error
    assert (sorry.tactic, admit.tactic) == ("sorry", "all_goals admit") and sorry.infra is None
    assert simp.state_id == omega.state_id == rfl.state_id  # each closes `case zero` only
    assert simp.goals[0].startswith("case succ") and len(simp.goals) == 1


def test_backtracking_returns_to_an_earlier_state_for_free(walk: dict) -> None:
    assert walk["goto"]["goals"] == INTRO_GOALS[0] and walk["goto"]["tactics"] == "  intro n"
    assert walk["induction_again"][4]["state_id"] == walk["induction"][4]["state_id"]
    assert walk["runs"]["cached_steps"] == 0 and walk["runs"]["after_backtrack"] == 0
    assert "intro n\n  induction n\n  simp" in walk["render"] and "case succ" in walk["render"]


def test_closing_the_last_goal_gets_the_verifiers_reward(walk: dict) -> None:
    obs, reward, terminated, truncated, info = walk["omega"]
    assert reward == 1.0 and terminated and not truncated
    assert info["verdict"] == "proved" and info["state_id"] == "no-goals" and obs["goals"] == ""
    assert obs["tactics"] == "  intro n\n  induction n\n  simp\n  omega"
    assert walk["runs"]["omega"] == 2  # the tactic, then the whole proof through rewards/
    with pytest.raises(gym.error.ResetNeeded):
        walk["env"].step("rfl")


def test_search_graph_has_one_node_per_goal_state(walk: dict) -> None:
    graph: nx.DiGraph = walk["env"].unwrapped.graph
    root, intro = walk["reset"][1]["state_id"], walk["intro"][4]["state_id"]
    cases, succ = walk["induction"][4]["state_id"], walk["simp"][4]["state_id"]
    assert set(graph.nodes) == {root, intro, cases, succ, "no-goals"}
    edges = {(u, v): d["tactic"] for u, v, d in graph.edges(data=True)}
    assert edges == {
        (root, intro): "intro n",
        (root, cases): "intro n\ninduction n",
        (intro, cases): "induction n",
        (cases, succ): "simp",
        (succ, "no-goals"): "omega",
    }
    assert graph.nodes[root]["root"] and graph.nodes["no-goals"]["proved"]
    assert graph.nodes[intro]["goals"] == INTRO_GOALS[0] and graph.nodes[cases]["n_goals"] == 2


def test_graph_exports_to_graphml_and_dot(walk: dict, tmp_path) -> None:
    env: LeanTacticEnv = walk["env"].unwrapped
    back = nx.read_graphml(env.export_graph(tmp_path / "search.graphml"))
    assert set(back.nodes) == set(env.graph.nodes) and back.number_of_edges() == env.graph.number_of_edges()
    dot = env.export_graph(tmp_path / "search.dot").read_text()
    assert dot.startswith("digraph proof_search {") and '[label="induction n\\l"]' in dot
    with pytest.raises(ValueError, match="graphml"):
        env.export_graph(tmp_path / "search.png")


def test_terminate_on_error_and_max_steps(walk: dict) -> None:
    """Both answered from the walk's cache: the same statement, the same tactics."""
    strict = LeanTacticEnv([HELD], terminate_on_error=True)
    strict.reset()
    assert strict.step("exact foo")[2] is True
    short = LeanTacticEnv([HELD], max_steps=1)
    short.reset()
    _, _, terminated, truncated, _ = short.step("intro n")
    assert truncated and not terminated
    strict.close(), short.close()


def test_proof_statement_starts_at_a_sorry() -> None:
    assert proof_statement(HELD) == "theorem lg_held_zero_add : ∀ n : Nat, 0 + n = n := by sorry"
    term = Problem("t", "theorem t : True :=")
    assert proof_statement(term) == "theorem t : True := by sorry"


def test_check_env_passes(walk: dict) -> None:
    env = gym.make("leangym/LeanTactic-v0", problems=[HELD])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    env.close()


def test_session_and_one_shot_runs_agree_on_states(lean: LeanRuntime) -> None:
    """The same states through a session and through one-shot Lean processes: the same goals."""
    oneshot = get_runtime("embedded", mode="oneshot", warm=0)
    statement = "theorem agree (n : Nat) (h : 0 < n) : n - 1 + 1 = n ∧ 0 + n = n := by sorry"
    tactics = ["constructor", "omega", "intro", "simp", "exact foo"]
    runs = []
    for runtime in (lean, oneshot):
        backend = ElaborationTactics(runtime)
        root = backend.start(statement, header=HEADER).state
        assert root is not None
        runs.append([(s.error != "", s.state.goals if s.state else None) for s in backend.apply_many(root, tactics)])
    oneshot.close()
    assert runs[0] == runs[1]
    failed, goals = runs[0][0]  # `constructor`: two goals
    assert not failed and goals is not None and len(goals) == 2 and "⊢ 0 + n = n" in goals[1]
    assert runs[0][4][0]  # `exact foo` fails
