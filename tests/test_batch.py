"""One-shot batch requests and answers (no Lean needed; the Lean-backed checks are in test_runtime.py)."""

from __future__ import annotations

import json

from leangym.lean_project.batch import Answers, plan, prepare, requests


def test_imports_are_read_past_comments() -> None:
    assert prepare(0, "import Std\n-- a comment\nimport Lean.Data\ntheorem t : True := trivial").imports == (
        "Std",
        "Lean.Data",
    )
    assert prepare(0, "-- import Std\ntheorem t : True := trivial").imports == ()


def test_plan_groups_by_imports_and_caps_the_batch() -> None:
    sources = [
        "theorem a : True := trivial",
        "import Std\ntheorem b : True := trivial",
        "instance : Inhabited Nat := ⟨1⟩",  # shares a run: every source is elaborated alone anyway
        "theorem c : True := trivial",
    ]
    batches = plan([prepare(i, s) for i, s in enumerate(sources)], max_batch=10)
    assert [[p.index for p in b] for b in batches] == [[0, 2, 3], [1]]
    sizes = [len(b) for b in plan([prepare(i, "theorem x : True := trivial") for i in range(5)], max_batch=2)]
    assert sizes == [2, 2, 1]


def test_requests_are_the_imports_then_each_source_whole() -> None:
    batch = [prepare(i, f"import Std\ntheorem t : {i} = {i} := rfl") for i in range(3)]
    ids = Answers(len(batch)).ids
    chunks = requests(batch, ids, export=True).split("\n\n")
    assert chunks[-1] == ""
    assert [json.loads(c) for c in chunks[:-1]] == [
        {"cmd": "import Std\n", "id": ids[0]},
        *({"cmd": p.source, "id": i, "export": True} for p, i in zip(batch, ids[1:], strict=True)),
    ]
    assert len(set(ids)) == len(ids)  # random per request


def test_answers_are_read_as_they_arrive() -> None:
    answers = Answers(2)
    ready = json.dumps({"env": 0, "messages": [], "id": answers.ids[0]})
    first = json.dumps(
        {
            "env": 1,
            "id": answers.ids[1],
            "messages": [{"severity": "error", "pos": {"line": 2, "column": 4}, "data": "no", "kind": "x"}],
            "constants": {"names": [None]},
        }
    )
    answers.feed(ready + "\n\n" + first[:10])
    assert answers.ready and answers.messages == []
    answers.feed(first[10:] + "\n\n")
    [[message]] = answers.messages
    assert (message.severity, message.pos.line, message.text, message.kind) == ("error", 2, "no", "x")
    assert answers.constants == [{"names": [None]}]
    answers.feed('{"message": "Unknown environment."}\n\n')
    assert answers.unreadable.startswith('{"message"') and len(answers.messages) == 1


def test_an_answer_without_its_request_id_is_not_an_answer() -> None:
    """Output a proof's code printed (a forged answer, or a real one shifted by one) is refused."""
    for forged in ({"env": 1, "messages": []}, {"env": 1, "messages": [], "id": "0" * 24}):
        answers = Answers(2)
        answers.feed(json.dumps({"env": 0, "messages": [], "id": answers.ids[0]}) + "\n\n")
        answers.feed(json.dumps(forged) + "\n\n")
        assert answers.unreadable and answers.messages == []
    shifted = Answers(2)
    shifted.feed(json.dumps({"env": 0, "messages": [], "id": shifted.ids[0]}) + "\n\n")
    shifted.feed(json.dumps({"env": 2, "messages": [], "id": shifted.ids[2]}) + "\n\n")
    assert shifted.unreadable and shifted.messages == []


def test_one_reader_of_imports_for_every_caller() -> None:
    """A batch, a problem and the REPL's header split read a source's imports the same way
    (`source.split_header`), two on a line and comments included."""
    from leangym.lean_project.source import split_header
    from leangym.rewards import Problem

    header = "import Std import Lean.Data -- import Mathlib\n/- import Aesop -/\nimport Lean\nopen Nat\n"
    want = ("Std", "Lean.Data", "Lean")
    source = header + "theorem t : True := trivial"
    assert prepare(0, source).imports == want
    assert Problem("t", "theorem t : True := trivial", header=header).imports == want
    assert split_header(source).imports == want
