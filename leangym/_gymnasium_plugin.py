"""Registers leangym's environments when Gymnasium is imported, without `import leangym.envs`.

Gymnasium < 1.0 loaded the `gymnasium.envs` entry points of installed distributions (ours is
declared in pyproject.toml); Gymnasium 1.x no longer does. So a regular install of lean-gym
ships a one-line `leangym-gymnasium.pth` (written by setup.py) that imports this module at
interpreter start-up. It imports nothing itself: it waits for `gymnasium.envs.registration`
to finish loading, then imports `leangym.envs`, whose import registers the ids. Python
without Gymnasium never notices it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

_TRIGGER = "gymnasium.envs.registration"


class _ThenRegister(importlib.abc.Loader):
    """Runs Gymnasium's own loader, then registers leangym's ids."""

    def __init__(self, inner: importlib.abc.Loader):
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        import leangym.envs  # noqa: F401 - importing it registers the environments


class _WatchForGymnasium(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TRIGGER:
            return None
        sys.meta_path.remove(self)  # once is enough
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)  # type: ignore[arg-type]
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenRegister(spec.loader)
        return spec


if _TRIGGER not in sys.modules and not any(isinstance(f, _WatchForGymnasium) for f in sys.meta_path):
    sys.meta_path.insert(0, _WatchForGymnasium())
