"""`gym.make("leangym/…")` with no `import leangym`, as a regular install gives it (no Lean needed).

Gymnasium 1.x reads no entry-point plugins, so a regular install ships `leangym-gymnasium.pth`
(setup.py). The test builds the wheel, puts its contents on a site directory of a fresh
interpreter, and makes both environments there without importing leangym first.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FRESH = """
import site, sys
site.addsitedir(sys.argv[1])                       # what installing the wheel does
assert "gymnasium" not in sys.modules and "leangym.envs" not in sys.modules
import gymnasium as gym
for env_id in ("leangym/LeanProof-v0", "leangym/LeanTactic-v0"):
    env = gym.make(env_id, problems="core:test")
    print(env_id, type(env.unwrapped).__name__)
    env.close()
"""


def test_a_regular_install_registers_the_envs_when_gymnasium_is_imported(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("*.whl")
    site_dir = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("leangym-gymnasium.pth").decode() == "import leangym._gymnasium_plugin\n"
        zf.extractall(site_dir)
    done = subprocess.run([sys.executable, "-c", FRESH, str(site_dir)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["leangym/LeanProof-v0 LeanProofEnv", "leangym/LeanTactic-v0 LeanTacticEnv"]


def test_importing_leangym_envs_registers_them_in_any_install() -> None:
    code = "import gymnasium as gym, leangym.envs; print(gym.spec('leangym/LeanTactic-v0').entry_point)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "leangym.envs.tactic_env:LeanTacticEnv"
