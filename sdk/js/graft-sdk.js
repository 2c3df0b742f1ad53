// Write graft plugins in JavaScript (built with componentize-js).
//
// A plugin is a class plus one line that exports it:
//
//   import * as graft from './graft-sdk.js';
//
//   class Rename {
//     constructor(config) {
//       this.from = config.string('from');
//       this.to = config.string('to');
//     }
//     process(batch) {
//       batch.renameField(this.from, this.to);
//       return batch;
//     }
//   }
//
//   export const processor = graft.processor(Rename);
//
// Batches keep graft's columnar layout: iterate for a row view (`Metric`),
// build with `BatchBuilder`, and edit whole batches with `renameField`,
// `setTag` and friends. Field values read and write as JavaScript values:
// a float is a number, an int a BigInt (`5n`), a uint a `Uint`, a boolean a
// boolean and a string a string.

import * as host from 'graft:plugin/host@0.1.0';

export const CONTRACT = 'graft:plugin@0.1.0';

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;

// ---------------------------------------------------------------- host

/** Write a log line attributed to this plugin. */
export function log(level, message) {
  host.log(level, String(message));
}
export const debug = (message) => log('debug', message);
export const info = (message) => log('info', message);
export const warn = (message) => log('warn', message);
export const error = (message) => log('error', message);

/** The plugin's name as configured (its alias, or `processors.wasm[0]`). */
export function pluginName() {
  return host.pluginName();
}

/** graft's wall clock: nanoseconds since the Unix epoch, as a BigInt. */
export function now() {
  return host.now();
}

// ---------------------------------------------------------------- errors

/** A failure the plugin reports on purpose; `field` names the config key at fault. */
export class PluginError extends Error {
  constructor(message, field) {
    super(message);
    this.name = 'PluginError';
    this.field = field;
  }
}

/** An output could not write now: graft keeps the batch and writes it again later. */
export class Retry extends Error {}

/** The metrics will never be accepted: graft counts and drops the batch. */
export class Reject extends Error {}

/** Some metrics were written (`accepted`, indices into the batch), some never can be (`rejected`). */
export class Partial extends Error {
  constructor(accepted, rejected, message = '') {
    super(message);
    this.accepted = [...accepted];
    this.rejected = [...rejected];
  }
}

// ---------------------------------------------------------------- values

/** An unsigned 64-bit field value (line protocol `123u`). */
export class Uint {
  constructor(value) {
    const v = BigInt(value);
    if (v < 0n || v > U64_MAX) throw new RangeError(`${v} is outside 0..2**64-1`);
    this.value = v;
  }
  valueOf() {
    return this.value;
  }
  toString() {
    return `${this.value}u`;
  }
}

function fromWitValue(batch, v) {
  switch (v.tag) {
    case 'float':
      return v.val;
    case 'int':
      return BigInt(v.val);
    case 'uint':
      return new Uint(v.val);
    case 'boolean':
      return v.val;
    case 'text':
      return batch.str(v.val);
    default:
      throw new TypeError(`unknown field value ${v.tag}`);
  }
}

function toWitValue(batch, value) {
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? { tag: 'float', val: value } : null;
    case 'bigint':
      if (value >= I64_MIN && value <= I64_MAX) return { tag: 'int', val: value };
      if (value >= 0n && value <= U64_MAX) return { tag: 'uint', val: value };
      throw new RangeError(`integer ${value} does not fit in 64 bits`);
    case 'boolean':
      return { tag: 'boolean', val: value };
    case 'string':
      return { tag: 'text', val: batch.intern(value) };
    default:
      if (value instanceof Uint) return { tag: 'uint', val: value.value };
      throw new TypeError(
        `a field value is a number, BigInt, Uint, boolean or string, not ${value === null ? 'null' : typeof value}`,
      );
  }
}

// ---------------------------------------------------------------- strings

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NON_ASCII = /[^\x00-\x7f]/;

function utf8Length(s) {
  return NON_ASCII.test(s) ? encoder.encode(s).length : s.length;
}

/** Order strings by their UTF-8 bytes, as graft sorts tag keys. */
export function compareUtf8(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      // Surrogates (astral characters) sort after every BMP character in UTF-8.
      const sx = x >= 0xd800 && x <= 0xdfff;
      const sy = y >= 0xd800 && y <= 0xdfff;
      if (sx !== sy) return sx ? 1 : -1;
      return x < y ? -1 : 1;
    }
  }
  return a.length - b.length;
}

// ---------------------------------------------------------------- batch

/** Metrics in graft's columnar form; `batch.length` metrics, iterable as `Metric` views. */
export class Batch {
  constructor() {
    this._data = '';
    this._ends = [];
    this._strs = [];
    this._base = 0;
    this._index = null;
    this.names = [];
    this.timestamps = [];
    this.tagOffsets = [0];
    this.tagKeys = [];
    this.tagValues = [];
    this.fieldOffsets = [0];
    this.fieldKeys = [];
    this.fieldValues = [];
  }

  /** Wrap a batch as graft hands it over; strings are decoded lazily. */
  static fromWit(b) {
    const self = new Batch();
    self._data = b.stringData;
    self._ends = b.stringEnds;
    self._strs = null;
    self._base = b.stringEnds.length;
    self.names = b.names;
    self.timestamps = b.timestamps;
    self.tagOffsets = b.tagOffsets;
    self.tagKeys = b.tagKeys;
    self.tagValues = b.tagValues;
    self.fieldOffsets = b.fieldOffsets;
    self.fieldKeys = b.fieldKeys;
    self.fieldValues = b.fieldValues;
    return self;
  }

  /** The batch as graft takes it back; unchanged strings are not re-encoded. */
  toWit() {
    let data = this._data;
    let ends = this._ends;
    const strs = this._strs;
    if (strs !== null && strs.length > this._base) {
      const added = strs.slice(this._base);
      const out = Array.from(ends);
      let end = out.length ? out[out.length - 1] : 0;
      for (const s of added) {
        end += utf8Length(s);
        out.push(end);
      }
      ends = out;
      data += added.join('');
    }
    return {
      stringData: data,
      stringEnds: u32(ends),
      names: u32(this.names),
      timestamps: i64(this.timestamps),
      tagOffsets: u32(this.tagOffsets),
      tagKeys: u32(this.tagKeys),
      tagValues: u32(this.tagValues),
      fieldOffsets: u32(this.fieldOffsets),
      fieldKeys: u32(this.fieldKeys),
      fieldValues: this.fieldValues,
    };
  }

  _strings() {
    if (this._strs === null) {
      const data = this._data;
      const ends = this._ends;
      const strs = new Array(ends.length);
      let start = 0;
      if (!NON_ASCII.test(data)) {
        for (let i = 0; i < ends.length; i++) {
          strs[i] = data.slice(start, ends[i]);
          start = ends[i];
        }
      } else {
        const raw = encoder.encode(data);
        for (let i = 0; i < ends.length; i++) {
          strs[i] = decoder.decode(raw.subarray(start, ends[i]));
          start = ends[i];
        }
      }
      this._strs = strs;
    }
    return this._strs;
  }

  /** The text of symbol `sym`. */
  str(sym) {
    return this._strings()[sym];
  }

  /** The symbol of `s`, or undefined. */
  lookup(s) {
    if (this._index === null) {
      const index = new Map();
      this._strings().forEach((text, sym) => {
        if (!index.has(text)) index.set(text, sym);
      });
      this._index = index;
    }
    return this._index.get(s);
  }

  /** The symbol of `s`, added to the string table when new. */
  intern(s) {
    let sym = this.lookup(s);
    if (sym === undefined) {
      const strs = this._strings();
      sym = strs.length;
      strs.push(s);
      this._index.set(s, sym);
    }
    return sym;
  }

  get length() {
    return this.names.length;
  }

  *[Symbol.iterator]() {
    for (let i = 0; i < this.names.length; i++) yield new Metric(this, i);
  }

  /** Metric `i` (negative counts from the end). */
  at(i) {
    const n = this.names.length;
    if (i < 0) i += n;
    if (i < 0 || i >= n) throw new RangeError(`metric ${i} of a batch of ${n}`);
    return new Metric(this, i);
  }

  /** A stored field value as JavaScript. */
  value(v) {
    return fromWitValue(this, v);
  }

  _own() {
    for (const k of ['names', 'tagKeys', 'tagValues', 'tagOffsets', 'fieldKeys', 'fieldOffsets', 'fieldValues', 'timestamps']) {
      if (!Array.isArray(this[k])) this[k] = Array.from(this[k]);
    }
  }

  /** Rename measurement `from` to `to`; returns how many metrics changed. */
  renameMeasurement(from, to) {
    const src = this.lookup(from);
    if (src === undefined) return 0;
    const dst = this.intern(to);
    let changed = 0;
    for (let i = 0; i < this.names.length; i++) {
      if (this.names[i] === src) {
        this.names[i] = dst;
        changed++;
      }
    }
    return changed;
  }

  /** Rename field `from` to `to` in every metric; where a metric already has
   * `to`, the renamed field replaces it. Returns how many fields were renamed. */
  renameField(from, to) {
    const src = this.lookup(from);
    if (src === undefined || from === to) return 0;
    const existed = this.lookup(to) !== undefined;
    const dst = this.intern(to);
    const keys = this.fieldKeys;
    const renamed = new Uint8Array(keys.length);
    let changed = 0;
    for (let f = 0; f < keys.length; f++) {
      if (keys[f] === src) {
        renamed[f] = 1;
        keys[f] = dst;
        changed++;
      }
    }
    if (existed && changed) {
      const keep = new Array(keys.length).fill(true);
      const offs = this.fieldOffsets;
      for (let i = 0; i < this.names.length; i++) {
        let winner = -1;
        for (let f = offs[i + 1] - 1; f >= offs[i]; f--) {
          if (renamed[f]) {
            winner = f;
            break;
          }
        }
        if (winner < 0) continue;
        for (let f = offs[i]; f < offs[i + 1]; f++) {
          if (f !== winner && keys[f] === dst) keep[f] = false;
        }
      }
      this._keepFields(keep);
    }
    return changed;
  }

  /** Set tag `key` to `value` on every metric, replacing what was there. */
  setTag(key, value) {
    this._insertTag(key, value, true);
  }

  /** Set tag `key` to `value` on every metric that lacks it. */
  setTagIfAbsent(key, value) {
    this._insertTag(key, value, false);
  }

  _insertTag(key, value, overwrite) {
    key = String(key);
    const k = this.intern(key);
    const v = this.intern(String(value));
    const strs = this._strings();
    const n = this.names.length;
    const oldKeys = this.tagKeys;
    const oldValues = this.tagValues;
    const offs = this.tagOffsets;
    const keys = new Uint32Array(oldKeys.length + n);
    const values = new Uint32Array(oldKeys.length + n);
    const newOffs = new Uint32Array(n + 1);
    // Where each key symbol sorts against `key`, worked out once per symbol:
    // -1 before it, 2 equal, 1 after.
    const order = new Int8Array(strs.length);
    let out = 0;
    for (let i = 0; i < n; i++) {
      const hi = offs[i + 1];
      let t = offs[i];
      let o = 1;
      for (; t < hi; t++) {
        const sym = oldKeys[t];
        o = order[sym];
        if (o === 0) o = order[sym] = strs[sym] === key ? 2 : compareUtf8(strs[sym], key) < 0 ? -1 : 1;
        if (o !== -1) break;
        keys[out] = sym;
        values[out++] = oldValues[t];
      }
      const present = t < hi && o === 2;
      if (overwrite || !present) {
        keys[out] = k;
        values[out++] = v;
      }
      if (present && overwrite) t++;
      for (; t < hi; t++) {
        keys[out] = oldKeys[t];
        values[out++] = oldValues[t];
      }
      newOffs[i + 1] = out;
    }
    this.tagKeys = keys.slice(0, out);
    this.tagValues = values.slice(0, out);
    this.tagOffsets = newOffs;
  }

  /** Keep the metrics for which `keep(metric)` is true. */
  retain(keep) {
    const mask = [...this].map((m) => Boolean(keep(m)));
    if (mask.every((k) => k)) return;
    const offs = this.fieldOffsets;
    const fieldMask = [];
    mask.forEach((k, i) => {
      for (let f = offs[i]; f < offs[i + 1]; f++) fieldMask.push(k);
    });
    this._keepFields(fieldMask);
  }

  /** Keep the fields whose key passes `keep`; metrics left with no field
   * are removed. Returns how many metrics were removed. */
  retainFields(keep) {
    const memo = new Map();
    const strs = this._strings();
    const mask = Array.from(this.fieldKeys, (k) => {
      if (!memo.has(k)) memo.set(k, Boolean(keep(strs[k])));
      return memo.get(k);
    });
    if (mask.every((k) => k)) return 0;
    const before = this.names.length;
    this._keepFields(mask);
    return before - this.names.length;
  }

  /** Keep the tags whose key passes `keep`. */
  retainTags(keep) {
    const memo = new Map();
    const strs = this._strings();
    const keys = [];
    const values = [];
    const offs = [0];
    for (let i = 0; i < this.names.length; i++) {
      for (let t = this.tagOffsets[i]; t < this.tagOffsets[i + 1]; t++) {
        const k = this.tagKeys[t];
        if (!memo.has(k)) memo.set(k, Boolean(keep(strs[k])));
        if (memo.get(k)) {
          keys.push(k);
          values.push(this.tagValues[t]);
        }
      }
      offs.push(keys.length);
    }
    this.tagKeys = keys;
    this.tagValues = values;
    this.tagOffsets = offs;
  }

  /** Replace every measurement name with `f(name)`, once per distinct name. */
  mapNames(f) {
    const memo = new Map();
    const strs = this._strings();
    this.names = Array.from(this.names, (n) => {
      if (!memo.has(n)) memo.set(n, this.intern(String(f(strs[n]))));
      return memo.get(n);
    });
  }

  /** Append every metric of `other`. */
  append(other) {
    const b = new BatchBuilder(this);
    for (const m of other) b.push(m);
    b.finish();
  }

  _keepFields(keep) {
    const out = {
      names: [], timestamps: [], tagOffsets: [0], tagKeys: [], tagValues: [],
      fieldOffsets: [0], fieldKeys: [], fieldValues: [],
    };
    for (let i = 0; i < this.names.length; i++) {
      const fields = [];
      for (let f = this.fieldOffsets[i]; f < this.fieldOffsets[i + 1]; f++) if (keep[f]) fields.push(f);
      if (!fields.length) continue;
      out.names.push(this.names[i]);
      out.timestamps.push(this.timestamps[i]);
      for (let t = this.tagOffsets[i]; t < this.tagOffsets[i + 1]; t++) {
        out.tagKeys.push(this.tagKeys[t]);
        out.tagValues.push(this.tagValues[t]);
      }
      out.tagOffsets.push(out.tagKeys.length);
      for (const f of fields) {
        out.fieldKeys.push(this.fieldKeys[f]);
        out.fieldValues.push(this.fieldValues[f]);
      }
      out.fieldOffsets.push(out.fieldKeys.length);
    }
    Object.assign(this, out);
  }
}

function u32(a) {
  return a instanceof Uint32Array ? a : Uint32Array.from(a);
}

function i64(a) {
  return a instanceof BigInt64Array ? a : BigInt64Array.from(a, (t) => BigInt(t));
}

/** A read-only view of metric `index` of a batch. */
export class Metric {
  constructor(batch, index) {
    this.batch = batch;
    this.index = index;
  }

  get name() {
    return this.batch.str(this.batch.names[this.index]);
  }

  /** Nanoseconds since the Unix epoch, as a BigInt. */
  get timestamp() {
    return BigInt(this.batch.timestamps[this.index]);
  }

  /** The tags as `[key, value]` pairs, sorted by key. */
  tagEntries() {
    const b = this.batch;
    const s = b._strings();
    const out = [];
    for (let t = b.tagOffsets[this.index]; t < b.tagOffsets[this.index + 1]; t++) {
      out.push([s[b.tagKeys[t]], s[b.tagValues[t]]]);
    }
    return out;
  }

  /** The tags as an object. */
  get tags() {
    return Object.fromEntries(this.tagEntries());
  }

  tag(key) {
    const e = this.tagEntries().find(([k]) => k === key);
    return e === undefined ? undefined : e[1];
  }

  /** The fields as `[key, value]` pairs, in the metric's order. */
  fieldEntries() {
    const b = this.batch;
    const s = b._strings();
    const out = [];
    for (let f = b.fieldOffsets[this.index]; f < b.fieldOffsets[this.index + 1]; f++) {
      out.push([s[b.fieldKeys[f]], b.value(b.fieldValues[f])]);
    }
    return out;
  }

  /** The fields as an object. */
  get fields() {
    return Object.fromEntries(this.fieldEntries());
  }

  field(key) {
    const e = this.fieldEntries().find(([k]) => k === key);
    return e === undefined ? undefined : e[1];
  }
}

// ---------------------------------------------------------------- builders

/** One metric being built; chain `.tag(k, v)` and `.field(k, value)`. */
export class MetricBuilder {
  constructor(name, timestamp) {
    this.name = String(name);
    this.ts = BigInt(timestamp);
    this.tags = [];
    this.fields = [];
  }

  /** Set a tag; of two with the same key the last wins. */
  tag(key, value) {
    this.tags.push([String(key), String(value)]);
    return this;
  }

  /** Add a field: number (float), BigInt (int), Uint, boolean or string. A
   * number that is NaN or infinite is left out. */
  field(key, value) {
    this.fields.push([String(key), value]);
    return this;
  }

  timestamp(timestamp) {
    this.ts = BigInt(timestamp);
    return this;
  }
}

/** Builds a `Batch`:
 *
 *   const b = new BatchBuilder();
 *   b.metric('cpu', graft.now()).tag('host', 'web-1').field('usage_idle', 97.5);
 *   const batch = b.finish();
 *
 * A metric left without fields is not added (as in graft's Rust SDK). */
export class BatchBuilder {
  constructor(batch) {
    this._batch = batch ?? new Batch();
    this._batch._own();
    this._pending = null;
  }

  get length() {
    this._commit();
    return this._batch.length;
  }

  /** Start a metric; `timestamp` in nanoseconds (BigInt or number), graft's clock when omitted. */
  metric(name, timestamp) {
    this._commit();
    const ts = timestamp === undefined ? now() : typeof timestamp === 'number' ? BigInt(Math.trunc(timestamp)) : timestamp;
    this._pending = new MetricBuilder(name, ts);
    return this._pending;
  }

  /** Copy a metric, from this batch or another. */
  push(metric) {
    this._commit();
    const b = this._batch;
    const src = metric.batch;
    const i = metric.index;
    const s = src._strings();
    b.names.push(b.intern(s[src.names[i]]));
    b.timestamps.push(BigInt(src.timestamps[i]));
    for (let t = src.tagOffsets[i]; t < src.tagOffsets[i + 1]; t++) {
      b.tagKeys.push(b.intern(s[src.tagKeys[t]]));
      b.tagValues.push(b.intern(s[src.tagValues[t]]));
    }
    b.tagOffsets.push(b.tagKeys.length);
    for (let f = src.fieldOffsets[i]; f < src.fieldOffsets[i + 1]; f++) {
      b.fieldKeys.push(b.intern(s[src.fieldKeys[f]]));
      const v = src.fieldValues[f];
      b.fieldValues.push(v.tag === 'text' ? { tag: 'text', val: b.intern(s[v.val]) } : v);
    }
    b.fieldOffsets.push(b.fieldKeys.length);
  }

  /** The batch built. */
  finish() {
    this._commit();
    return this._batch;
  }

  _commit() {
    const m = this._pending;
    if (m === null) return;
    this._pending = null;
    const b = this._batch;
    const values = [];
    for (const [key, value] of m.fields) {
      const v = toWitValue(b, value);
      if (v !== null) values.push([b.intern(key), v]);
    }
    if (!values.length) return;
    b.names.push(b.intern(m.name));
    b.timestamps.push(m.ts);
    const latest = new Map();
    for (const [k, v] of m.tags) latest.set(k, v);
    for (const k of [...latest.keys()].sort(compareUtf8)) {
      b.tagKeys.push(b.intern(k));
      b.tagValues.push(b.intern(latest.get(k)));
    }
    b.tagOffsets.push(b.tagKeys.length);
    for (const [k, v] of values) {
      b.fieldKeys.push(k);
      b.fieldValues.push(v);
    }
    b.fieldOffsets.push(b.fieldKeys.length);
  }
}

// ---------------------------------------------------------------- config

function describe(value) {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return `boolean \`${value}\``;
    case 'number':
      return Number.isInteger(value) ? `integer \`${value}\`` : `floating point \`${value}\``;
    case 'string':
      return `string ${JSON.stringify(value)}`;
    default:
      return Array.isArray(value) ? 'sequence' : 'map';
  }
}

const REQUIRED = Symbol('required');
const isTable = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The plugin's `config` table, read with typed getters. Every getter names
 * the key at fault, and keys the plugin never read are refused as unknown
 * once its constructor returns. */
export class Config {
  constructor(values, path = '') {
    this._values = values;
    this._path = path;
    this._read = new Set();
    this._tables = [];
  }

  /** Parse the JSON text graft passes to `init`. */
  static parse(text) {
    let values;
    try {
      values = JSON.parse(text);
    } catch (e) {
      throw new PluginError(`the config is not valid JSON: ${e.message}`);
    }
    if (!isTable(values)) throw new PluginError(`invalid type: ${describe(values)}, expected a table`);
    return new Config(values);
  }

  _key(key) {
    return this._path ? `${this._path}.${key}` : key;
  }

  _take(key, fallback) {
    this._read.add(key);
    if (Object.hasOwn(this._values, key)) return { value: this._values[key], given: true };
    if (fallback === REQUIRED) throw new PluginError(`missing field \`${key}\``, this._key(key));
    return { value: fallback, given: false };
  }

  _wrong(path, value, expected) {
    return new PluginError(`invalid type: ${describe(value)}, expected ${expected}`, path);
  }

  has(key) {
    return Object.hasOwn(this._values, key);
  }

  string(key, fallback = REQUIRED) {
    const { value, given } = this._take(key, fallback);
    if (given && typeof value !== 'string') throw this._wrong(this._key(key), value, 'a string');
    return value;
  }

  /** An integer, as a number. */
  integer(key, fallback = REQUIRED) {
    const { value, given } = this._take(key, fallback);
    if (given && !Number.isInteger(value)) throw this._wrong(this._key(key), value, 'an integer');
    return value;
  }

  number(key, fallback = REQUIRED) {
    const { value, given } = this._take(key, fallback);
    if (given && (typeof value !== 'number' || !Number.isFinite(value))) throw this._wrong(this._key(key), value, 'a number');
    return value;
  }

  boolean(key, fallback = REQUIRED) {
    const { value, given } = this._take(key, fallback);
    if (given && typeof value !== 'boolean') throw this._wrong(this._key(key), value, 'a boolean');
    return value;
  }

  strings(key, fallback = REQUIRED) {
    const { value, given } = this._take(key, fallback);
    if (!given) return value;
    if (!Array.isArray(value)) throw this._wrong(this._key(key), value, 'a sequence of strings');
    value.forEach((s, i) => {
      if (typeof s !== 'string') throw this._wrong(`${this._key(key)}[${i}]`, s, 'a string');
    });
    return [...value];
  }

  stringMap(key, fallback = REQUIRED) {
    const { value, given } = this._take(key, fallback);
    if (!given) return value;
    if (!isTable(value)) throw this._wrong(this._key(key), value, 'a table of strings');
    for (const [k, s] of Object.entries(value)) {
      if (typeof s !== 'string') throw this._wrong(`${this._key(key)}.${k}`, s, 'a string');
    }
    return { ...value };
  }

  /** A nested table, read with the same getters and checks. */
  table(key, fallback = REQUIRED) {
    const { value, given } = this._take(key, fallback);
    if (given && !isTable(value)) throw this._wrong(this._key(key), value, 'a table');
    const sub = new Config(isTable(value) ? value : {}, this._key(key));
    if (given) this._tables.push(sub);
    return sub;
  }

  /** The raw JSON value, unchecked. */
  get(key, fallback) {
    this._read.add(key);
    return Object.hasOwn(this._values, key) ? this._values[key] : fallback;
  }

  /** Every value, unchecked; no key counts as unknown afterwards. */
  raw() {
    for (const k of Object.keys(this._values)) this._read.add(k);
    return this._values;
  }

  /** Refuse keys that were never read (the SDK calls this after the constructor). */
  checkUnknown() {
    for (const k of Object.keys(this._values)) {
      if (!this._read.has(k)) throw new PluginError(`unknown field \`${k}\``, this._key(k));
    }
    for (const t of this._tables) t.checkUnknown();
  }
}

// ---------------------------------------------------------------- exports

function where(e) {
  const line = typeof e?.stack === 'string' ? e.stack.split('\n').find((l) => l.includes(':')) : undefined;
  return line ? ` (at ${line.trim()})` : '';
}

function asPluginError(e) {
  if (e instanceof PluginError) return { message: e.message, field: e.field };
  if (e instanceof Error) return { message: `${e.name}: ${e.message}${where(e)}`, field: undefined };
  return { message: String(e), field: undefined };
}

function guard(call) {
  try {
    return call();
  } catch (e) {
    // Every failure becomes an error result, not a trap.
    throw asPluginError(e);
  }
}

function asBatch(value, what) {
  if (value instanceof BatchBuilder) return value.finish();
  if (!(value instanceof Batch)) {
    throw new TypeError(`${what} must return a graft Batch, not ${value === null ? 'null' : typeof value}`);
  }
  return value;
}

function holder(Class) {
  let plugin = null;
  return {
    init(text) {
      plugin = null;
      guard(() => {
        const config = Config.parse(text);
        const p = new Class(config);
        config.checkUnknown();
        plugin = p;
      });
    },
    get() {
      if (plugin === null) throw new PluginError('plugin called before a successful init');
      return plugin;
    },
  };
}

/** The `input` export for a class with `constructor(config)` and `gather()`. */
export function input(Class) {
  const h = holder(Class);
  return {
    init: (config) => h.init(config),
    gather: () => guard(() => asBatch(h.get().gather(), 'gather').toWit()),
  };
}

/** The `processor` export for a class with `constructor(config)` and `process(batch)`. */
export function processor(Class) {
  const h = holder(Class);
  return {
    init: (config) => h.init(config),
    process: (batch) => guard(() => asBatch(h.get().process(Batch.fromWit(batch)), 'process').toWit()),
  };
}

/** The `aggregator` export for a class with `constructor(config)`, `add(batch)`,
 * `push()` and `reset()`. */
export function aggregator(Class) {
  const h = holder(Class);
  return {
    init: (config) => h.init(config),
    add: (batch) => guard(() => {
      h.get().add(Batch.fromWit(batch));
    }),
    // `push` and `reset` cannot return an error: a failure is a crash that
    // graft isolates and recovers from.
    push: () => asBatch(h.get().push(), 'push').toWit(),
    reset: () => {
      h.get().reset();
    },
  };
}

/** The `output` export for a class with `constructor(config)` and `write(batch)`,
 * which throws `Retry`, `Reject` or `Partial` when it cannot write everything. */
export function output(Class) {
  const h = holder(Class);
  return {
    init: (config) => h.init(config),
    write: (batch) => {
      try {
        h.get().write(Batch.fromWit(batch));
      } catch (e) {
        if (e instanceof Reject) throw { tag: 'reject', val: e.message };
        if (e instanceof Partial) {
          throw { tag: 'partial', val: { accepted: Uint32Array.from(e.accepted), rejected: Uint32Array.from(e.rejected), message: e.message } };
        }
        // Anything else keeps the batch: graft writes it again later.
        throw { tag: 'retry', val: asPluginError(e).message };
      }
    },
  };
}
