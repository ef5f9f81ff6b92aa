"""Everything is in pyproject.toml but one build step: ship `leangym-gymnasium.pth`.

Gymnasium 1.x stopped loading the `gymnasium.envs` entry points, so this one-line `.pth`
file (installed beside the packages) imports `leangym._gymnasium_plugin`, which registers
leangym's environments when Gymnasium is imported: `gym.make("leangym/LeanProof-v0")` works
with no `import leangym`. Editable installs do not get the file (setuptools builds their
wheel differently); there, `import leangym.envs` registers the ids.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "leangym-gymnasium.pth"


class BuildPyWithPth(build_py):
    def run(self) -> None:
        super().run()
        Path(self.build_lib, PTH).write_text("import leangym._gymnasium_plugin\n")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib, PTH))]


setup(cmdclass={"build_py": BuildPyWithPth})
