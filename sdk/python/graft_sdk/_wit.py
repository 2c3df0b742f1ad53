"""The WIT types of graft's contract.

Inside a component built by componentize-py they come from the generated
``wit_world`` package. Outside it (unit tests, type checkers, a REPL) the SDK
uses look-alike classes with the same names and fields, so batch code runs
and can be tested under plain CPython.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Optional, Union

try:  # inside componentize-py
    from componentize_py_types import Err
    from wit_world.imports import host as _host
    from wit_world.imports.types import (
        Batch as WitBatch,
        FieldValue_Boolean,
        FieldValue_Float,
        FieldValue_Int,
        FieldValue_Text,
        FieldValue_Uint,
        PartialWrite,
        PluginError as WitPluginError,
        WriteError_Partial,
        WriteError_Reject,
        WriteError_Retry,
    )

    IN_COMPONENT = True

    def log(level: str, message: str) -> None:
        _host.log(_LEVELS[level], message)

    def plugin_name() -> str:
        return _host.plugin_name()

    def now() -> int:
        return _host.now()

    _LEVELS = {
        "trace": _host.Level.TRACE,
        "debug": _host.Level.DEBUG,
        "info": _host.Level.INFO,
        "warn": _host.Level.WARN,
        "error": _host.Level.ERROR,
    }

except ImportError:  # plain CPython
    IN_COMPONENT = False

    @dataclass
    class FieldValue_Float:  # noqa: N801 - the generated name
        value: float

    @dataclass
    class FieldValue_Int:  # noqa: N801
        value: int

    @dataclass
    class FieldValue_Uint:  # noqa: N801
        value: int

    @dataclass
    class FieldValue_Boolean:  # noqa: N801
        value: bool

    @dataclass
    class FieldValue_Text:  # noqa: N801
        value: int

    FieldValue = Union[
        FieldValue_Float, FieldValue_Int, FieldValue_Uint, FieldValue_Boolean, FieldValue_Text
    ]

    @dataclass
    class WitBatch:  # type: ignore[no-redef]
        string_data: str
        string_ends: List[int]
        names: List[int]
        timestamps: List[int]
        tag_offsets: List[int]
        tag_keys: List[int]
        tag_values: List[int]
        field_offsets: List[int]
        field_keys: List[int]
        field_values: List[FieldValue]

    @dataclass
    class WitPluginError:  # type: ignore[no-redef]
        message: str
        field: Optional[str]

    @dataclass
    class PartialWrite:  # type: ignore[no-redef]
        accepted: List[int]
        rejected: List[int]
        message: str

    @dataclass
    class WriteError_Retry:  # noqa: N801
        value: str

    @dataclass
    class WriteError_Reject:  # noqa: N801
        value: str

    @dataclass
    class WriteError_Partial:  # noqa: N801
        value: PartialWrite

    @dataclass(frozen=True)
    class Err(Exception):  # type: ignore[no-redef]
        value: object

    _LOG: List[tuple] = []

    def log(level: str, message: str) -> None:
        _LOG.append((level, message))

    def plugin_name() -> str:
        return "python"

    def now() -> int:
        return time.time_ns()
