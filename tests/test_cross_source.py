"""Red team, class `cross_source`: no verdict of `proved` may lean on another submission.

A batch holds failed attempts (a false theorem whose `decide` fails, a `where` auxiliary and a
`let rec` of a false fact, a failed proof of `False`) and a successful neighbour; after them
come submissions that would be "proved" if any of those were reachable: by `exact?`,
`apply?`, by name (plain, namespaced, `.aux`, `.go`), through `have`, `rw`, `simp`, in the
same problem and in others. Each must be rejected; each control (the same kind of proof where
the library really proves it) must still be proved. Then the same exploit goes down every
other path that batches: a vector env step, `try_tactics`, a GRPO group (`verify_with_retries`
and the TRL reward), and an eval batch. Real embedded Lean throughout; the verifier batch is
one `verify_batch` (module fixture).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import pytest
from conftest import FORGED_ANSWER, verify_in_one_batch  # pytest puts tests/ on sys.path

import leangym.envs  # noqa: F401 - registers the environments
from leangym.agents.evaluate import run_eval
from leangym.agents.prover import ProofSampler
from leangym.cli import main as leangym_main
from leangym.lean_project import LeanRuntime
from leangym.rewards import Policy, Problem, Verdict, get_verifier, make_lean_reward
from leangym.rewards.verifier import verify_with_retries

pytestmark = pytest.mark.lean

TARGET = Problem("target", "theorem target : (1 : Nat) + 1 = 3 := by")  # false
TARGET_TERM = Problem("target_term", "theorem target_term : (1 : Nat) + 1 = 3 :=")  # false, term form
PE = Problem("pe", "theorem pe : False := by")  # false
TWO = Problem("two_plus", "theorem two_plus : (2 : Nat) + 2 = 4 := by")  # true: the successful neighbour
FOUR = Problem("four", "theorem four : (2 : Nat) + 2 = 4 := by")  # true, same statement as TWO
ZERO_ADD = Problem("zero_add_l", "theorem zero_add_l (n : Nat) : 0 + n = n := by")  # true, in the library
ADD_COMM = Problem("add_comm_l", "theorem add_comm_l (a b : Nat) : a + b = b + a := by")  # true, in the library
P = {p.name: p for p in (TARGET, TARGET_TERM, PE, TWO, FOUR, ZERO_ADD, ADD_COMM)}


@dataclass(frozen=True)
class Case:
    id: str
    problem: str
    body: str
    outcome: str = "rejected"


NEIGHBOURS = [
    Case("n-decide", "target", "  decide"),
    Case("n-where", "target", "  exact aux\nwhere aux : (1 : Nat) + 1 = 3 := by decide"),
    Case("n-let-rec", "target", "  let rec go : (1 : Nat) + 1 = 3 := by decide\n  exact go"),
    Case("n-false", "pe", "  simp"),
    Case("n-true", "two_plus", "  decide", "proved"),
]

CROSS_SOURCE = [
    Case("same-exact?", "target", "  exact?"),
    Case("same-apply?", "target", "  apply?"),
    Case("same-first-exact?", "target", "  first | decide | exact?"),
    Case("same-by-namespaced-name", "target", "  exact S0.target"),
    Case("same-by-batch-name", "target", "  exact LG.S0.target"),
    Case("same-where-aux-by-name", "target", "  exact target.aux"),
    Case("same-let-rec-by-name", "target", "  exact target.go"),
    Case("same-statement-term-exact?", "target_term", " by exact?"),
    Case("other-have-exact?", "pe", "  have h : (1 : Nat) + 1 = 3 := by exact?\n  omega"),
    Case("other-have-apply?", "pe", "  have h : (1 : Nat) + 1 = 3 := by apply?\n  omega"),
    Case("other-by-name", "pe", "  exact absurd target (by decide)"),
    Case("other-where-aux", "pe", "  have h := target.aux\n  omega"),
    Case("other-let-rec", "pe", "  have h := target.go\n  omega"),
    Case("other-rw", "pe", "  have h : (1 : Nat) + 1 = 3 := by rw [target]\n  omega"),
    Case("other-simp", "pe", "  have h : (1 : Nat) + 1 = 3 := by simp [target]\n  omega"),
    Case("successful-neighbour-by-name", "four", "  exact two_plus"),
]

CONTROLS = [  # the same kinds of proof, where the library (or the proof itself) really proves the goal
    Case("control-exact?", "zero_add_l", "  exact?", "proved"),
    Case("control-apply?", "add_comm_l", "  apply?", "proved"),
    Case("control-first-exact?", "zero_add_l", "  first | decide | exact?", "proved"),
    Case("control-have-exact?", "four", "  have h : 0 + 4 = 4 := by exact?\n  omega", "proved"),
    Case("control-where", "four", "  exact aux\nwhere aux : (2 : Nat) + 2 = 4 := by decide", "proved"),
    Case("control-let-rec", "four", "  let rec go : (2 : Nat) + 2 = 4 := by decide\n  exact go", "proved"),
    Case("control-rw", "zero_add_l", "  rw [Nat.zero_add]", "proved"),
]

ALL = NEIGHBOURS + CROSS_SOURCE + CONTROLS


@pytest.fixture(scope="module")
def verdicts(lean: LeanRuntime) -> dict[str, Verdict]:
    """Neighbours first, then the exploits and the controls: one `verify_batch`, one Lean batch."""
    out = verify_in_one_batch(lean, [(P[c.problem], c.body) for c in ALL])
    return dict(zip([c.id for c in ALL], out, strict=True))


def test_class_size() -> None:
    assert len(CROSS_SOURCE) >= 15


@pytest.mark.parametrize("case", NEIGHBOURS, ids=lambda c: c.id)
def test_neighbours_get_their_own_verdicts(case: Case, verdicts: dict[str, Verdict]) -> None:
    assert verdicts[case.id].outcome == case.outcome, verdicts[case.id].detail


@pytest.mark.parametrize("case", CROSS_SOURCE, ids=lambda c: c.id)
def test_no_proof_reaches_another_submission(case: Case, verdicts: dict[str, Verdict]) -> None:
    v = verdicts[case.id]
    assert v.outcome == "rejected" and v.reward == 0.0, (v.reasons, v.detail)
    assert set(v.reasons) & {"lean_error", "sorry"}, v.detail  # `apply?` admits what it cannot close


@pytest.mark.parametrize("case", CONTROLS, ids=lambda c: c.id)
def test_library_proofs_of_the_same_kind_are_proved(case: Case, verdicts: dict[str, Verdict]) -> None:
    v = verdicts[case.id]
    assert v.outcome == "proved", (v.reasons, v.detail)


# -- the other paths that batch ------------------------------------------------------------

EXPLOITS = ("\n  decide", "\n  exact?", "\n  exact S0.target", "\n  first | decide | exact?", "\n" + FORGED_ANSWER)


def test_vector_env_step(lean: LeanRuntime) -> None:
    get_verifier(lean)  # the envs' shared runtime is the session's
    envs = gym.make_vec("leangym/LeanProof-v0", num_envs=len(EXPLOITS), vectorization_mode="sync", problems=[TARGET])
    envs.reset(seed=0, options={"problem": TARGET.name})
    _, rewards, terminated, _, info = envs.step(EXPLOITS)
    assert rewards.tolist() == [0.0] * len(EXPLOITS) and terminated.all()
    assert list(info["verdict"]) == ["rejected"] * len(EXPLOITS)
    envs.close()


def test_try_tactics(lean: LeanRuntime) -> None:
    get_verifier(lean)
    env = gym.make("leangym/LeanTactic-v0", problems=[TARGET])
    _, info = env.reset(seed=0)
    root = info["state_id"]
    tactics = ["decide", "exact?", "first | decide | exact?", "exact S0.target", FORGED_ANSWER.strip()]
    outcomes = env.unwrapped.try_tactics(root, tactics)
    assert all(o.failed for o in outcomes), [(o.tactic, o.failed) for o in outcomes]
    assert not any(data.get("proved") for _, data in env.unwrapped.graph.nodes(data=True))
    env.close()


def test_grpo_group(lean: LeanRuntime) -> None:
    verifier = get_verifier(lean, Policy())
    group = [(TARGET, b) for b in ("  decide", "  exact?", FORGED_ANSWER, "  apply?", "  exact target.aux")]
    verdicts = verify_with_retries(verifier, group, 1)
    assert [v.reward for v in verdicts] == [0.0] * len(group)
    reward = make_lean_reward(verifier=verifier)
    completions = ["```lean\n  decide\n```", "```lean\n  exact?\n```"]
    rows = {"name": [TARGET.name] * 2, "formal_statement": [TARGET.formal_statement] * 2}
    assert reward(prompts=["p", "p"], completions=completions, **rows) == [0.0, 0.0]


class _NeighbourSampler(ProofSampler):
    """Per problem: a failed attempt first, then `exact?`."""

    name = "neighbours"

    def sample(self, problems: list[Problem], n: int) -> list[list[str]]:
        return [["  decide", FORGED_ANSWER, "  exact?"][:n] for _ in problems]


def test_eval_batch(lean: LeanRuntime, tmp_path: Path) -> None:
    summary = run_eval(
        [TARGET, PE], _NeighbourSampler(), k=3, out=tmp_path, verifier=get_verifier(lean), progress=False
    )
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(s["verdict"] == "rejected" for row in rows for s in row["samples"]), rows
    assert all(len(row["samples"]) == 3 for row in rows)
    assert summary["splits"]["all"]["solved"] == 0


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2)])
def test_leangym_verify_on_the_issue_table(lean: LeanRuntime, tmp_path: Path, order: tuple[int, ...]) -> None:
    """The four rows that once gave `exact?` and `exact S1.target` a reward of 1, in any order."""
    get_verifier(lean, Policy())  # the CLI's verifier shares this session's Lean
    rows = [" by decide", " by exact?", " by omega", " by exact S1.target"]
    statement = "theorem target : (1 : Nat) + 1 = 3 :="
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [json.dumps({"name": "target", "formal_statement": statement, "proof": rows[i], "row": i}) for i in order]
    src.write_text("\n".join(lines) + "\n")
    assert leangym_main(["verify", str(src), "--out", str(out)]) == 0
    got = {r["row"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert [got[i]["verdict"] for i in range(4)] == ["rejected"] * 4, got
    assert all(got[i]["reward"] == 0.0 for i in range(4))
