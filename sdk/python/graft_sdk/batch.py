"""Batches of metrics: a row view, builders and cheap whole-batch edits.

A :class:`Batch` keeps graft's columnar layout: every name, tag and string
is a symbol into one string table, so renaming a field in ten thousand
metrics changes ten thousand integers and adds one string. Read it row by row
with ``for metric in batch``; build new ones with :class:`BatchBuilder`.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

from . import _wit
from ._wit import (
    FieldValue_Boolean,
    FieldValue_Float,
    FieldValue_Int,
    FieldValue_Text,
    FieldValue_Uint,
)

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1
U64_MAX = 2**64 - 1


class Uint(int):
    """An unsigned 64-bit field value (line protocol ``123u``).

    Reading a uint field gives a ``Uint``; giving one to a builder writes a
    uint. A plain ``int`` is written as a signed integer when it fits.
    """

    __slots__ = ()

    def __new__(cls, value: int) -> "Uint":
        if not 0 <= int(value) <= U64_MAX:
            raise ValueError(f"{value} is outside 0..2**64-1")
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return f"Uint({int(self)})"


Value = Union[float, int, Uint, bool, str]


def _utf8_len(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode())


class Batch:
    """Metrics in graft's columnar form.

    ``len(batch)`` metrics; ``batch[i]`` or iteration gives :class:`Metric`
    views. The edits below change the batch in place.
    """

    __slots__ = (
        "_data",
        "_ends",
        "_strs",
        "_base",
        "_index",
        "names",
        "timestamps",
        "tag_offsets",
        "tag_keys",
        "tag_values",
        "field_offsets",
        "field_keys",
        "field_values",
    )

    def __init__(self) -> None:
        self._data = ""
        self._ends: List[int] = []
        self._strs: Optional[List[str]] = []
        self._base = 0
        self._index: Optional[Dict[str, int]] = None
        self.names: List[int] = []
        self.timestamps: List[int] = []
        self.tag_offsets: List[int] = [0]
        self.tag_keys: List[int] = []
        self.tag_values: List[int] = []
        self.field_offsets: List[int] = [0]
        self.field_keys: List[int] = []
        self.field_values: list = []

    # -- crossing the WIT boundary ------------------------------------------

    @classmethod
    def from_wit(cls, b: "_wit.WitBatch") -> "Batch":
        """Wrap a batch as graft hands it over; strings are decoded lazily."""
        self = cls.__new__(cls)
        self._data = b.string_data
        self._ends = b.string_ends
        self._strs = None
        self._base = len(b.string_ends)
        self._index = None
        self.names = b.names
        self.timestamps = b.timestamps
        self.tag_offsets = b.tag_offsets
        self.tag_keys = b.tag_keys
        self.tag_values = b.tag_values
        self.field_offsets = b.field_offsets
        self.field_keys = b.field_keys
        self.field_values = b.field_values
        return self

    def to_wit(self) -> "_wit.WitBatch":
        """The batch as graft takes it back; unchanged strings are not re-encoded."""
        data, ends = self._data, self._ends
        strs = self._strs
        if strs is not None and len(strs) > self._base:
            added = strs[self._base :]
            ends = list(ends)
            end = ends[-1] if ends else 0
            for s in added:
                end += _utf8_len(s)
                ends.append(end)
            data = data + "".join(added)
        return _wit.WitBatch(
            string_data=data,
            string_ends=ends,
            names=self.names,
            timestamps=self.timestamps,
            tag_offsets=self.tag_offsets,
            tag_keys=self.tag_keys,
            tag_values=self.tag_values,
            field_offsets=self.field_offsets,
            field_keys=self.field_keys,
            field_values=self.field_values,
        )

    # -- strings ------------------------------------------------------------

    def _strings(self) -> List[str]:
        strs = self._strs
        if strs is None:
            data, ends = self._data, self._ends
            starts = [0]
            starts.extend(ends[:-1])
            if data.isascii():
                strs = [data[a:b] for a, b in zip(starts, ends)]
            else:
                raw = data.encode()
                strs = [raw[a:b].decode() for a, b in zip(starts, ends)]
            self._strs = strs
        return strs

    def str(self, sym: int) -> str:
        """The text of symbol ``sym``."""
        return self._strings()[sym]

    def lookup(self, s: str) -> Optional[int]:
        """The symbol of ``s``, if the batch has it."""
        index = self._index
        if index is None:
            index = {}
            for sym, text in enumerate(self._strings()):
                index.setdefault(text, sym)
            self._index = index
        return index.get(s)

    def intern(self, s: str) -> int:
        """The symbol of ``s``, added to the string table when new."""
        sym = self.lookup(s)
        if sym is None:
            strs = self._strings()
            sym = len(strs)
            strs.append(s)
            self._index[s] = sym  # type: ignore[index]
        return sym

    # -- the row view -------------------------------------------------------

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator["Metric"]:
        for i in range(len(self.names)):
            yield Metric(self, i)

    def __getitem__(self, i: int) -> "Metric":
        n = len(self.names)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"metric {i} of a batch of {n}")
        return Metric(self, i)

    def __repr__(self) -> str:
        return f"<Batch of {len(self)} metrics>"

    def value(self, v: object) -> Value:
        """A stored field value as Python: float, int, Uint, bool or str."""
        t = type(v)
        if t is FieldValue_Float:
            return v.value  # type: ignore[attr-defined]
        if t is FieldValue_Int:
            return v.value  # type: ignore[attr-defined]
        if t is FieldValue_Text:
            return self.str(v.value)  # type: ignore[attr-defined]
        if t is FieldValue_Uint:
            return Uint(v.value)  # type: ignore[attr-defined]
        return v.value  # type: ignore[attr-defined]

    def field_value(self, value: Value) -> Optional[object]:
        """A Python value as stored; ``None`` for a float that is not finite."""
        if isinstance(value, bool):
            return FieldValue_Boolean(value)
        if isinstance(value, Uint):
            return FieldValue_Uint(int(value))
        if isinstance(value, int):
            if I64_MIN <= value <= I64_MAX:
                return FieldValue_Int(value)
            if 0 <= value <= U64_MAX:
                return FieldValue_Uint(value)
            raise ValueError(f"integer {value} does not fit in 64 bits")
        if isinstance(value, float):
            return FieldValue_Float(value) if math.isfinite(value) else None
        if isinstance(value, str):
            return FieldValue_Text(self.intern(value))
        raise TypeError(
            f"a field value is a float, int, Uint, bool or str, not {type(value).__name__}"
        )

    # -- edits --------------------------------------------------------------

    def rename_measurement(self, old: str, new: str) -> int:
        """Rename measurement ``old`` to ``new``; returns how many metrics changed."""
        src = self.lookup(old)
        if src is None:
            return 0
        dst = self.intern(new)
        names = self.names
        changed = 0
        for i, n in enumerate(names):
            if n == src:
                names[i] = dst
                changed += 1
        return changed

    def rename_field(self, old: str, new: str) -> int:
        """Rename field ``old`` to ``new`` in every metric; where a metric
        already has ``new``, the renamed field replaces it. Returns how many
        fields were renamed."""
        src = self.lookup(old)
        if src is None or old == new:
            return 0
        existed = self.lookup(new) is not None
        dst = self.intern(new)
        keys = self.field_keys
        if not isinstance(keys, list):
            keys = self.field_keys = list(keys)
        renamed = [k == src for k in keys]
        changed = 0
        for f, r in enumerate(renamed):
            if r:
                keys[f] = dst
                changed += 1
        if existed and changed:
            keep = [True] * len(keys)
            offs = self.field_offsets
            for i in range(len(self.names)):
                lo, hi = offs[i], offs[i + 1]
                winner = next((f for f in range(hi - 1, lo - 1, -1) if renamed[f]), None)
                if winner is None:
                    continue
                for f in range(lo, hi):
                    if f != winner and keys[f] == dst:
                        keep[f] = False
            self._keep_fields(keep)
        return changed

    def set_tag(self, key: str, value: str) -> None:
        """Set tag ``key`` to ``value`` on every metric, replacing what was there."""
        self._insert_tag(key, value, overwrite=True)

    def set_tag_if_absent(self, key: str, value: str) -> None:
        """Set tag ``key`` to ``value`` on every metric that lacks it."""
        self._insert_tag(key, value, overwrite=False)

    def _insert_tag(self, key: str, value: str, overwrite: bool) -> None:
        k = self.intern(key)
        v = self.intern(value)
        strs = self._strings()
        old_keys, old_values, offs = self.tag_keys, self.tag_values, self.tag_offsets
        keys: List[int] = []
        values: List[int] = []
        new_offs = [0]
        for i in range(len(self.names)):
            lo, hi = offs[i], offs[i + 1]
            pos = lo
            while pos < hi and strs[old_keys[pos]] < key:
                pos += 1
            present = pos < hi and strs[old_keys[pos]] == key
            keys.extend(old_keys[lo:pos])
            values.extend(old_values[lo:pos])
            if overwrite or not present:
                keys.append(k)
                values.append(v)
            rest = pos + 1 if present and overwrite else pos
            keys.extend(old_keys[rest:hi])
            values.extend(old_values[rest:hi])
            new_offs.append(len(keys))
        self.tag_keys, self.tag_values, self.tag_offsets = keys, values, new_offs

    def retain(self, keep: Callable[["Metric"], bool]) -> None:
        """Keep the metrics for which ``keep(metric)`` is true."""
        mask = [bool(keep(m)) for m in self]
        if all(mask):
            return
        offs = self.field_offsets
        field_mask: List[bool] = []
        for i, k in enumerate(mask):
            field_mask.extend([k] * (offs[i + 1] - offs[i]))
        self._keep_fields(field_mask)

    def retain_fields(self, keep: Callable[[str], bool]) -> int:
        """Keep the fields whose key passes ``keep``; metrics left with no
        field are removed. Returns how many metrics were removed."""
        memo: Dict[int, bool] = {}
        strs = self._strings()
        mask = []
        for k in self.field_keys:
            m = memo.get(k)
            if m is None:
                m = memo[k] = bool(keep(strs[k]))
            mask.append(m)
        if all(mask):
            return 0
        before = len(self.names)
        self._keep_fields(mask)
        return before - len(self.names)

    def retain_tags(self, keep: Callable[[str], bool]) -> None:
        """Keep the tags whose key passes ``keep``."""
        memo: Dict[int, bool] = {}
        strs = self._strings()
        keys: List[int] = []
        values: List[int] = []
        offs = [0]
        old_k, old_v, old_o = self.tag_keys, self.tag_values, self.tag_offsets
        for i in range(len(self.names)):
            for t in range(old_o[i], old_o[i + 1]):
                k = old_k[t]
                m = memo.get(k)
                if m is None:
                    m = memo[k] = bool(keep(strs[k]))
                if m:
                    keys.append(k)
                    values.append(old_v[t])
            offs.append(len(keys))
        self.tag_keys, self.tag_values, self.tag_offsets = keys, values, offs

    def map_names(self, f: Callable[[str], str]) -> None:
        """Replace every measurement name with ``f(name)``, once per distinct name."""
        memo: Dict[int, int] = {}
        strs = self._strings()
        names = list(self.names)
        for i, n in enumerate(names):
            new = memo.get(n)
            if new is None:
                new = memo[n] = self.intern(f(strs[n]))
            names[i] = new
        self.names = names

    def append(self, other: "Batch") -> None:
        """Append every metric of ``other``."""
        b = BatchBuilder(self)
        for m in other:
            b.push(m)
        b.finish()

    def _keep_fields(self, keep: List[bool]) -> None:
        names, stamps, to, tk, tv = [], [], [0], [], []
        fo, fk, fv = [0], [], []
        old = self
        for i in range(len(old.names)):
            fields = [f for f in range(old.field_offsets[i], old.field_offsets[i + 1]) if keep[f]]
            if not fields:
                continue
            names.append(old.names[i])
            stamps.append(old.timestamps[i])
            lo, hi = old.tag_offsets[i], old.tag_offsets[i + 1]
            tk.extend(old.tag_keys[lo:hi])
            tv.extend(old.tag_values[lo:hi])
            to.append(len(tk))
            for f in fields:
                fk.append(old.field_keys[f])
                fv.append(old.field_values[f])
            fo.append(len(fk))
        self.names, self.timestamps = names, stamps
        self.tag_offsets, self.tag_keys, self.tag_values = to, tk, tv
        self.field_offsets, self.field_keys, self.field_values = fo, fk, fv


class Metric:
    """A read-only view of metric ``index`` of a batch."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: Batch, index: int) -> None:
        self.batch = batch
        self.index = index

    @property
    def name(self) -> str:
        return self.batch.str(self.batch.names[self.index])

    @property
    def timestamp(self) -> int:
        """Nanoseconds since the Unix epoch."""
        return self.batch.timestamps[self.index]

    def tag_items(self) -> List[Tuple[str, str]]:
        """The tags as ``(key, value)`` pairs, sorted by key."""
        b, i = self.batch, self.index
        s = b._strings()
        lo, hi = b.tag_offsets[i], b.tag_offsets[i + 1]
        return [(s[b.tag_keys[t]], s[b.tag_values[t]]) for t in range(lo, hi)]

    @property
    def tags(self) -> Dict[str, str]:
        return dict(self.tag_items())

    def tag(self, key: str) -> Optional[str]:
        for k, v in self.tag_items():
            if k == key:
                return v
        return None

    def field_items(self) -> List[Tuple[str, Value]]:
        """The fields as ``(key, value)`` pairs, in the metric's order."""
        b, i = self.batch, self.index
        s = b._strings()
        lo, hi = b.field_offsets[i], b.field_offsets[i + 1]
        return [(s[b.field_keys[f]], b.value(b.field_values[f])) for f in range(lo, hi)]

    @property
    def fields(self) -> Dict[str, Value]:
        return dict(self.field_items())

    def field(self, key: str) -> Optional[Value]:
        for k, v in self.field_items():
            if k == key:
                return v
        return None

    def __repr__(self) -> str:
        return f"<Metric {self.name} {self.tags} {self.fields} {self.timestamp}>"


class MetricBuilder:
    """One metric being built; see :meth:`BatchBuilder.metric`. Chain
    ``.tag(k, v)`` and ``.field(k, value)``."""

    __slots__ = ("name", "ts", "tags", "fields")

    def __init__(self, name: str, timestamp: int) -> None:
        self.name = name
        self.ts = timestamp
        self.tags: List[Tuple[str, str]] = []
        self.fields: List[Tuple[str, Value]] = []

    def tag(self, key: str, value: str) -> "MetricBuilder":
        """Set a tag; of two with the same key the last wins."""
        self.tags.append((str(key), str(value)))
        return self

    def field(self, key: str, value: Value) -> "MetricBuilder":
        """Add a field: float, int, :class:`Uint`, bool or str. A float that
        is NaN or infinite is left out."""
        self.fields.append((str(key), value))
        return self

    def timestamp(self, timestamp: int) -> "MetricBuilder":
        self.ts = int(timestamp)
        return self


class BatchBuilder:
    """Builds a :class:`Batch`::

        b = BatchBuilder()
        b.metric("cpu", now()).tag("host", "web-1").field("usage_idle", 97.5)
        batch = b.finish()

    A metric left without fields is not added (as in graft's Rust SDK).
    """

    def __init__(self, batch: Optional[Batch] = None) -> None:
        self._batch = batch if batch is not None else Batch()
        self._pending: Optional[MetricBuilder] = None
        b = self._batch
        for name in ("names", "timestamps", "tag_offsets", "tag_keys", "tag_values",
                     "field_offsets", "field_keys", "field_values"):
            col = getattr(b, name)
            if not isinstance(col, list):
                setattr(b, name, list(col))

    def __len__(self) -> int:
        self._commit()
        return len(self._batch)

    def metric(self, name: str, timestamp: Optional[int] = None) -> MetricBuilder:
        """Start a metric; ``timestamp`` in nanoseconds, graft's clock when omitted."""
        self._commit()
        self._pending = MetricBuilder(str(name), _wit.now() if timestamp is None else int(timestamp))
        return self._pending

    def push(self, metric: Metric) -> None:
        """Copy a metric (a row of a :class:`Batch`), from this batch or another."""
        if not isinstance(metric, Metric):
            if isinstance(metric, MetricBuilder):
                raise TypeError(
                    "BatchBuilder.push() copies a row of a Batch; a MetricBuilder is "
                    "not one. Build new metrics with builder.metric(name, timestamp)"
                    ".tag(...).field(...) on this builder instead of pushing them"
                )
            raise TypeError(
                f"BatchBuilder.push() takes a metric of a Batch (for m in batch), "
                f"not {type(metric).__name__}"
            )
        self._commit()
        b, src, i = self._batch, metric.batch, metric.index
        s = src._strings()
        b.names.append(b.intern(s[src.names[i]]))
        b.timestamps.append(src.timestamps[i])
        for t in range(src.tag_offsets[i], src.tag_offsets[i + 1]):
            b.tag_keys.append(b.intern(s[src.tag_keys[t]]))
            b.tag_values.append(b.intern(s[src.tag_values[t]]))
        b.tag_offsets.append(len(b.tag_keys))
        for f in range(src.field_offsets[i], src.field_offsets[i + 1]):
            b.field_keys.append(b.intern(s[src.field_keys[f]]))
            v = src.field_values[f]
            if type(v) is FieldValue_Text:
                v = FieldValue_Text(b.intern(s[v.value]))
            b.field_values.append(v)
        b.field_offsets.append(len(b.field_keys))

    def finish(self) -> Batch:
        """The batch built."""
        self._commit()
        return self._batch

    def _commit(self) -> None:
        m = self._pending
        if m is None:
            return
        self._pending = None
        b = self._batch
        values = []
        for key, value in m.fields:
            v = b.field_value(value)
            if v is not None:
                values.append((b.intern(key), v))
        if not values:
            return
        b.names.append(b.intern(m.name))
        b.timestamps.append(m.ts)
        latest: Dict[str, str] = {}
        for k, v in m.tags:
            latest[k] = v
        for k in sorted(latest):
            b.tag_keys.append(b.intern(k))
            b.tag_values.append(b.intern(latest[k]))
        b.tag_offsets.append(len(b.tag_keys))
        for k, v in values:
            b.field_keys.append(k)
            b.field_values.append(v)
        b.field_offsets.append(len(b.field_keys))
