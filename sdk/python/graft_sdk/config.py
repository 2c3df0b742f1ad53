"""The plugin's ``config`` table, read with typed getters.

Every getter names the key at fault when the value is missing or of the
wrong type, in the same words as graft's Rust SDK, and a key the plugin
never read is refused as unknown once its constructor returns, so a typo in
graft.toml is an error, not a silently ignored setting.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional

from .errors import PluginError

_REQUIRED: Any = object()


def describe(value: Any) -> str:
    """How a JSON value is named in errors: ``integer `42```, ``string "x"``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def _wrong(path: str, value: Any, expected: str) -> PluginError:
    return PluginError(f"invalid type: {describe(value)}, expected {expected}", field=path)


class Config:
    """A JSON object from graft.toml's ``[*.wasm.config]`` table."""

    def __init__(self, values: Dict[str, Any], path: str = "") -> None:
        self._values = values
        self._path = path
        self._read: set = set()
        self._tables: List["Config"] = []

    @classmethod
    def parse(cls, text: str) -> "Config":
        """Parse the JSON text graft passes to ``init``."""
        try:
            values = json.loads(text)
        except ValueError as e:
            raise PluginError(f"the config is not valid JSON: {e}") from None
        if not isinstance(values, dict):
            raise PluginError(f"invalid type: {describe(values)}, expected a table")
        return cls(values)

    def _key(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def _take(self, key: str, default: Any) -> "tuple[Any, bool]":
        """The value and whether it was given (else the default)."""
        self._read.add(key)
        if key in self._values:
            return self._values[key], True
        if default is _REQUIRED:
            raise PluginError(f"missing field `{key}`", field=self._key(key))
        return default, False

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def string(self, key: str, default: Any = _REQUIRED) -> str:
        v, given = self._take(key, default)
        if not given:
            return v
        if not isinstance(v, str):
            raise _wrong(self._key(key), v, "a string")
        return v

    def integer(self, key: str, default: Any = _REQUIRED, *, min: Optional[int] = None,
                max: Optional[int] = None) -> int:
        v, given = self._take(key, default)
        if not given:
            return v
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise _wrong(self._key(key), v, "an integer")
        if (min is not None and v < min) or (max is not None and v > max):
            lo = "" if min is None else f"at least {min}"
            hi = "" if max is None else f"at most {max}"
            raise PluginError(f"{v} is out of range: must be {' and '.join(x for x in (lo, hi) if x)}",
                              field=self._key(key))
        return v

    def number(self, key: str, default: Any = _REQUIRED) -> float:
        v, given = self._take(key, default)
        if not given:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _wrong(self._key(key), v, "a number")
        return float(v)

    def boolean(self, key: str, default: Any = _REQUIRED) -> bool:
        v, given = self._take(key, default)
        if not given:
            return v
        if not isinstance(v, bool):
            raise _wrong(self._key(key), v, "a boolean")
        return v

    def strings(self, key: str, default: Any = _REQUIRED) -> List[str]:
        v, given = self._take(key, default)
        if not given:
            return v
        if not isinstance(v, list):
            raise _wrong(self._key(key), v, "a sequence of strings")
        for i, s in enumerate(v):
            if not isinstance(s, str):
                raise _wrong(f"{self._key(key)}[{i}]", s, "a string")
        return list(v)

    def string_map(self, key: str, default: Any = _REQUIRED) -> Dict[str, str]:
        v, given = self._take(key, default)
        if not given:
            return v
        if not isinstance(v, dict):
            raise _wrong(self._key(key), v, "a table of strings")
        for k, s in v.items():
            if not isinstance(s, str):
                raise _wrong(f"{self._key(key)}.{k}", s, "a string")
        return dict(v)

    def table(self, key: str, default: Any = _REQUIRED) -> "Config":
        """A nested table, read with the same getters (and the same checks)."""
        v, given = self._take(key, default)
        if not given:
            return Config(v if isinstance(v, dict) else {}, self._key(key))
        if not isinstance(v, dict):
            raise _wrong(self._key(key), v, "a table")
        sub = Config(v, self._key(key))
        self._tables.append(sub)
        return sub

    def get(self, key: str, default: Any = None) -> Any:
        """The raw JSON value, unchecked."""
        self._read.add(key)
        return self._values.get(key, default)

    def raw(self) -> Dict[str, Any]:
        """Every value, unchecked; no key counts as unknown afterwards."""
        self._read.update(self._values)
        return self._values

    def check_unknown(self) -> None:
        """Refuse keys that were never read (the SDK calls this after init)."""
        for key in self._values:
            if key not in self._read:
                raise PluginError(f"unknown field `{key}`", field=self._key(key))
        for sub in self._tables:
            sub.check_unknown()
