"""Registering the environments the Gymnasium 1.x way (no Lean needed).

`import leangym.envs` registers both ids; `gym.make("leangym.envs:leangym/LeanProof-v0")` does
the import itself, as Gymnasium's `module:id` form does for any third-party environment. The
test builds the wheel and checks both in a fresh interpreter whose only leangym is that wheel,
the way a regular install has it (an editable install behaves the same: see the last test).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FRESH = """
import site, sys
site.addsitedir(sys.argv[1])                       # what installing the wheel does
import gymnasium as gym
assert "leangym.envs" not in sys.modules
env = gym.make("leangym.envs:leangym/LeanProof-v0", problems="core:test")   # imports leangym.envs
print(type(env.unwrapped).__name__)
env.close()
env = gym.make("leangym/LeanTactic-v0", problems="core:test")  # registered by that import
print(type(env.unwrapped).__name__)
env.close()
"""


def test_a_regular_install_registers_the_envs_on_import(tmp_path: Path) -> None:
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools would reuse files of an older build
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
        assert not [n for n in zf.namelist() if n.endswith(".pth")]  # no start-up hook
        zf.extractall(site_dir)
    done = subprocess.run([sys.executable, "-c", FRESH, str(site_dir)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["LeanProofEnv", "LeanTacticEnv"]


def test_without_the_import_the_ids_are_unknown_and_the_error_says_what_to_do() -> None:
    code = "import gymnasium as gym\ntry:\n    gym.make('leangym/LeanProof-v0')\nexcept gym.error.Error as e:\n    print(e)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "leangym" in done.stdout  # Gymnasium names the namespace it does not know


def test_importing_leangym_envs_registers_them_in_any_install() -> None:
    code = "import gymnasium as gym, leangym.envs; print(gym.spec('leangym/LeanTactic-v0').entry_point)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "leangym.envs.tactic_env:LeanTacticEnv"
