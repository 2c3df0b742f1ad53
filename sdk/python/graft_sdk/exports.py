"""Turn a plain Python class into the export componentize-py looks for.

``Processor = graft_sdk.processor(MyPlugin)`` at the top level of the app
module is all it takes. graft calls ``init`` once with the JSON config; the
SDK parses it into a :class:`Config`, builds ``MyPlugin(config)``, refuses
keys the constructor never read, and then hands every call to that one
object, converting batches and errors both ways.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from . import _wit
from .batch import Batch, BatchBuilder
from .config import Config
from .errors import Partial, PluginError, Reject, Retry

_plugin: Optional[Any] = None


def _base(name: str) -> type:
    if _wit.IN_COMPONENT:
        from wit_world import exports  # generated for the world being built

        return getattr(exports, name)
    return object


# Where componentize-py put the Python path while building the component
# (``PYTHONPATH=/python:/world:/0:/1:...``); the files are not there when the
# plugin runs, so they are shown relative to it.
_BUILD_ROOTS = ("/python/", "/world/", "/bundled/")

# Frames of this module are the SDK's plumbing, not the plugin's code.
_SDK_FILE = __file__


def _short(filename: str) -> str:
    for root in _BUILD_ROOTS:
        if filename.startswith(root):
            return filename[len(root):]
    head, sep, rest = filename[1:].partition("/")
    if filename.startswith("/") and sep and head.isdigit():
        return rest
    return filename


def _where(e: BaseException, most: int = 6) -> str:
    """The frames of ``e``'s traceback, innermost last, as ``file:line in
    function`` — read from the code objects alone: unlike the ``traceback``
    module, this never opens a source file (the plugin has none to open)."""
    frames = []
    tb = e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename != _SDK_FILE:
            frames.append(f"{_short(code.co_filename)}:{tb.tb_lineno} in {code.co_name}")
        tb = tb.tb_next
    if not frames:
        return ""
    shown = frames[-most:]
    if len(frames) > most:
        shown.insert(0, "...")
    return " (traceback: " + " > ".join(shown) + ")"


def _as_plugin_error(e: BaseException) -> "_wit.WitPluginError":
    if isinstance(e, PluginError):
        return _wit.WitPluginError(message=e.message, field=e.field)
    return _wit.WitPluginError(message=f"{type(e).__name__}: {e}{_where(e)}", field=None)


def _guard(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as e:  # every failure becomes an error result, not a trap
        raise _wit.Err(_as_plugin_error(e)) from None


def _current() -> Any:
    if _plugin is None:
        raise PluginError("plugin called before a successful init")
    return _plugin


def _batch(value: Any, what: str) -> Batch:
    if isinstance(value, BatchBuilder):
        return value.finish()
    if not isinstance(value, Batch):
        raise TypeError(f"{what} must return a graft_sdk.Batch, not {type(value).__name__}")
    return value


def _init(cls: type, text: str) -> None:
    global _plugin

    def build() -> None:
        global _plugin
        config = Config.parse(text)
        plugin = cls(config)
        config.check_unknown()
        _plugin = plugin

    _plugin = None
    _guard(build)


def input(cls: type) -> type:  # noqa: A001 - the plugin kind's name
    """The ``Input`` export for a class with ``__init__(self, config)`` and
    ``gather(self) -> Batch``."""

    class Input(_base("Input")):  # type: ignore[misc]
        def init(self, config: str) -> None:
            _init(cls, config)

        def gather(self) -> Any:
            return _guard(lambda: _batch(_current().gather(), "gather").to_wit())

    return Input


def processor(cls: type) -> type:
    """The ``Processor`` export for a class with ``__init__(self, config)``
    and ``process(self, batch) -> Batch``."""

    class Processor(_base("Processor")):  # type: ignore[misc]
        def init(self, config: str) -> None:
            _init(cls, config)

        def process(self, batch: Any) -> Any:
            return _guard(
                lambda: _batch(_current().process(Batch.from_wit(batch)), "process").to_wit()
            )

    return Processor


def aggregator(cls: type) -> type:
    """The ``Aggregator`` export for a class with ``__init__(self, config)``,
    ``add(self, batch)``, ``push(self) -> Batch`` and ``reset(self)``."""

    class Aggregator(_base("Aggregator")):  # type: ignore[misc]
        def init(self, config: str) -> None:
            _init(cls, config)

        def add(self, batch: Any) -> None:
            _guard(lambda: _current().add(Batch.from_wit(batch)))

        def push(self) -> Any:
            # `push` cannot return an error: a failure here is a crash that
            # graft isolates and recovers from.
            return _batch(_current().push(), "push").to_wit()

        def reset(self) -> None:
            _current().reset()

    return Aggregator


def output(cls: type) -> type:
    """The ``Output`` export for a class with ``__init__(self, config)`` and
    ``write(self, batch)``, which raises :class:`Retry`, :class:`Reject` or
    :class:`Partial` when it cannot write everything."""

    class Output(_base("Output")):  # type: ignore[misc]
        def init(self, config: str) -> None:
            _init(cls, config)

        def write(self, batch: Any) -> None:
            try:
                _current().write(Batch.from_wit(batch))
            except Reject as e:
                raise _wit.Err(_wit.WriteError_Reject(str(e))) from None
            except Partial as e:
                raise _wit.Err(
                    _wit.WriteError_Partial(_wit.PartialWrite(e.accepted, e.rejected, e.message))
                ) from None
            except Retry as e:
                raise _wit.Err(_wit.WriteError_Retry(str(e))) from None
            except Exception as e:  # keep the batch: graft writes it again later
                raise _wit.Err(_wit.WriteError_Retry(str(_as_plugin_error(e).message))) from None

    return Output
