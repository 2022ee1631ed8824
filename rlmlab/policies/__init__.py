"""Read policies for a remote Context: how segments are fetched, kept and fetched ahead.

Each policy kind (`fetch`, `cache`, `prefetch`) is a module of small classes registered
by name, in the style of fsspec's `caching.py`, so a notebook or a benchmark swaps a
policy by naming it. `Registry.create` also accepts a ready-made instance (to share a
cache between contexts, say) and routes keyword options to the class that declares them.
"""

from __future__ import annotations

import inspect
from typing import Any


class Registry(dict):
    """Policy classes of one kind, by name."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, cls: type) -> type:
        """Class decorator: make `cls` available under `cls.name`."""
        self[cls.name] = cls
        return cls

    def resolve(self, spec: str | Any) -> type:
        """The class named by `spec` (a name), or the class of an instance."""
        if isinstance(spec, str):
            try:
                return self[spec]
            except KeyError:
                raise ValueError(
                    f"unknown {self.kind} policy {spec!r}; choose one of: {', '.join(sorted(self))}"
                ) from None
        return type(spec)

    def options(self, spec: str | Any) -> set[str]:
        """Keyword options the policy's constructor accepts."""
        params = inspect.signature(self.resolve(spec).__init__).parameters
        return {n for n, p in params.items() if n != "self" and p.kind is p.KEYWORD_ONLY}

    def create(self, spec: str | Any, **options) -> Any:
        """An instance for `spec`; an instance passed in is returned as it is."""
        if not isinstance(spec, str):
            return spec
        return self.resolve(spec)(**options)
