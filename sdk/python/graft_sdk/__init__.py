"""Write graft plugins in Python.

A plugin is a class plus one line that exports it::

    import graft_sdk as graft

    class Rename:
        def __init__(self, config: graft.Config):
            self.old = config.string("from")
            self.new = config.string("to")

        def process(self, batch: graft.Batch) -> graft.Batch:
            batch.rename_field(self.old, self.new)
            return batch

    Processor = graft.processor(Rename)

Build it with componentize-py against graft's WIT::

    componentize-py -d wit -w graft:plugin/processor-plugin componentize app -o plugin.wasm

Batches keep graft's columnar layout: iterate for a row view
(:class:`Metric`), build with :class:`BatchBuilder`, and edit whole batches
with :meth:`Batch.rename_field`, :meth:`Batch.set_tag` and friends.
"""

from . import _wit
from .batch import Batch, BatchBuilder, Metric, MetricBuilder, Uint, Value
from .config import Config
from .errors import Partial, PluginError, Reject, Retry
from .exports import aggregator, input, output, processor

__version__ = "0.1.0"
CONTRACT = "graft:plugin@0.1.0"


def log(level: str, message: str) -> None:
    """Write a log line attributed to this plugin; ``level`` is one of
    ``trace``, ``debug``, ``info``, ``warn``, ``error``."""
    _wit.log(level, str(message))


def debug(message: str) -> None:
    _wit.log("debug", str(message))


def info(message: str) -> None:
    _wit.log("info", str(message))


def warn(message: str) -> None:
    _wit.log("warn", str(message))


def error(message: str) -> None:
    _wit.log("error", str(message))


def plugin_name() -> str:
    """The plugin's name as configured (its alias, or ``processors.wasm[0]``)."""
    return _wit.plugin_name()


def now() -> int:
    """graft's wall clock, nanoseconds since the Unix epoch."""
    return _wit.now()


__all__ = [
    "Batch", "BatchBuilder", "Metric", "MetricBuilder", "Uint", "Value", "Config",
    "PluginError", "Retry", "Reject", "Partial",
    "input", "processor", "aggregator", "output",
    "log", "debug", "info", "warn", "error", "plugin_name", "now", "CONTRACT",
]
