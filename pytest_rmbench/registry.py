"""One registry type for item kinds, model kinds and suites.

Entries are lazy: a name maps to a `"module:attribute"` string that is imported the first
time the name is asked for (so `--rm-bench rewardbench` never imports torch, and a run of
YAML files never imports any suite). Third-party packages add entries through an entry
point group (`[project.entry-points."pytest_rmbench.suites"]` ...), read once, on the first
lookup of a name the built-in table lacks or on the first listing. Registering a name twice
with a different target is an error naming both; an unknown name lists the ones there are.
"""

from __future__ import annotations

import importlib
from typing import Any, Generic, Iterator, TypeVar

T = TypeVar("T")


class RegistryError(Exception):
    """A name registered twice, or an entry that cannot be imported."""


class UnknownName(LookupError):
    """No entry of that name; the message lists the names there are."""


def load_target(target: str) -> Any:
    """`"package.module:attribute"` -> the attribute."""
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    value = module
    for part in attribute.split(".") if attribute else ():
        value = getattr(value, part)
    return value


class Registry(Generic[T]):
    """Names -> objects, loaded on first use."""

    def __init__(self, what: str, entry_point_group: str | None = None, builtin: dict[str, Any] | None = None):
        self.what = what  # "item kind", "model kind", "suite": words for messages
        self.group = entry_point_group
        self._targets: dict[str, Any] = {}  # name -> "module:attr" or the object itself
        self._loaded: dict[str, T] = {}
        self._scanned = entry_point_group is None
        for name, target in (builtin or {}).items():
            self.register(name, target)

    def register(self, name: str, target: Any, *, replace: bool = False) -> None:
        """Add an entry; `target` is an object or a lazy "module:attribute" string."""
        known = self._targets.get(name)
        if known is not None and not replace and known is not target and known != target:
            raise RegistryError(f"{self.what} {name!r} is registered twice: by {_where(known)} and by {_where(target)}")
        self._targets[name] = target
        self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        """Remove an entry (a plugin's cleanup, or a test's); unknown names are ignored."""
        self._targets.pop(name, None)
        self._loaded.pop(name, None)

    def get(self, name: str) -> T:
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._targets:
            self._scan()
        if name not in self._targets:
            raise UnknownName(f"unknown {self.what} {name!r}; available: {', '.join(self.names()) or 'none'}")
        target = self._targets[name]
        if isinstance(target, str):
            try:
                target = load_target(target)
            except (ImportError, AttributeError) as exc:
                raise RegistryError(f"{self.what} {name!r}: cannot load {self._targets[name]}: {exc}") from exc
        self._loaded[name] = target
        return target

    def names(self) -> list[str]:
        self._scan()
        return list(self._targets)

    def builtin_names(self) -> list[str]:
        """The names known without reading entry points (cheap; for help texts)."""
        return list(self._targets)

    def __contains__(self, name: object) -> bool:
        if name not in self._targets:
            self._scan()
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _scan(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        from importlib.metadata import entry_points

        for entry in entry_points(group=self.group):
            self.register(entry.name, entry.value)


def _where(target: Any) -> str:
    if isinstance(target, str):
        return target
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', type(target).__name__)}"
