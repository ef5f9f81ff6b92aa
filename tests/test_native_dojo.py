"""The LeanDojo adapter: importable without LeanDojo; a real run needs `[dojo]` and a traced repository.

Set LEANGYM_DOJO_REPO="<git url>@<commit>" (a Lean 4 repository LeanDojo can trace, e.g. its
lean4-example) to run the end-to-end test; tracing needs network access and takes minutes.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from leangym.envs import dojo


def test_missing_lean_dojo_is_a_clear_error():
    if importlib.util.find_spec("lean_dojo") is not None:
        pytest.skip("LeanDojo is installed here")
    with pytest.raises(ImportError, match=r"pip install 'lean-gym\[dojo\]'"):
        dojo.traced_problems("https://github.com/yangky11/lean4-example", "main")


@pytest.mark.native
@pytest.mark.skipif(importlib.util.find_spec("lean_dojo") is None, reason="LeanDojo not installed ([dojo] extra)")
@pytest.mark.skipif("LEANGYM_DOJO_REPO" not in os.environ, reason="set LEANGYM_DOJO_REPO=<git url>@<commit>")
def test_traced_repository_end_to_end():
    url, _, commit = os.environ["LEANGYM_DOJO_REPO"].rpartition("@")
    [problem] = dojo.traced_problems(url, commit, limit=1)
    assert problem.reference_proof and problem.formal_statement.endswith(":= by")
    with dojo.DojoTactics(problem, timeout=120) as search:
        start = search.start()
        assert start.state is not None and start.state.goals
        refused = search.apply(start.state, "exact this_lemma_does_not_exist_anywhere")
        assert refused.failed and refused.infra is None and refused.error
