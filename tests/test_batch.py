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
    chunks = requests(batch).split("\n\n")
    assert chunks[-1] == ""
    assert [json.loads(c) for c in chunks[:-1]] == [
        {"cmd": "import Std\n"},
        *({"cmd": p.source} for p in batch),
    ]


def test_answers_are_read_as_they_arrive() -> None:
    answers = Answers()
    ready = json.dumps({"env": 0, "messages": []})
    first = json.dumps(
        {"env": 1, "messages": [{"severity": "error", "pos": {"line": 2, "column": 4}, "data": "no", "kind": "x"}]}
    )
    answers.feed(ready + "\n\n" + first[:10])
    assert answers.ready and answers.messages == []
    answers.feed(first[10:] + "\n\n")
    [[message]] = answers.messages
    assert (message.severity, message.pos.line, message.text, message.kind) == ("error", 2, "no", "x")
    answers.feed('{"message": "Unknown environment."}\n\n')
    assert answers.unreadable.startswith('{"message"') and len(answers.messages) == 1
