// Unit tests of the JavaScript SDK under plain Node:
//   cd sdk/js && npm test
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as graft from '../graft-sdk.js';
import { Batch, BatchBuilder, Uint } from '../graft-sdk.js';

function witFrom(lines) {
  const b = new BatchBuilder();
  for (const [name, tags, fields, ts] of lines) {
    const m = b.metric(name, ts);
    for (const [k, v] of Object.entries(tags)) m.tag(k, v);
    for (const [k, v] of Object.entries(fields)) m.field(k, v);
  }
  return b.finish().toWit();
}

const rows = (batch) => [...batch].map((m) => [m.name, m.tags, m.fields, m.timestamp]);

// The invariants graft checks on every batch a plugin returns.
function checkContract(w) {
  const raw = new TextEncoder().encode(w.stringData);
  const ends = [...w.stringEnds];
  assert.equal(ends.length ? ends[ends.length - 1] : 0, raw.length);
  const strings = Batch.fromWit(w)._strings();
  const n = w.names.length;
  for (const [offs, len] of [[w.tagOffsets, w.tagKeys.length], [w.fieldOffsets, w.fieldKeys.length]]) {
    assert.equal(offs.length, n + 1);
    assert.equal(offs[0], 0);
    assert.equal(offs[n], len);
    for (let i = 0; i < n; i++) assert.ok(offs[i] <= offs[i + 1]);
  }
  for (let i = 0; i < n; i++) {
    const keys = [...w.tagKeys.slice(w.tagOffsets[i], w.tagOffsets[i + 1])].map((k) => strings[k]);
    const sorted = [...new Set(keys)].sort(graft.compareUtf8);
    assert.deepEqual(keys, sorted);
    assert.ok(w.fieldOffsets[i + 1] > w.fieldOffsets[i]);
  }
  assert.ok(w.stringEnds instanceof Uint32Array && w.timestamps instanceof BigInt64Array);
}

const sample = () =>
  witFrom([
    ['cpu', { host: 'a', cpu: 'cpu0' }, { usage: 1.5, n: 3n, u: new Uint(7), ok: true, s: 'hé' }, 1n],
    ['温度', { 部屋: '会議室' }, { 値: 21.5 }, 2n],
  ]);

test('a round trip keeps values and their types', () => {
  const w = sample();
  const b = Batch.fromWit(w);
  const [cpu, temp] = rows(b);
  assert.deepEqual(cpu.slice(0, 2), ['cpu', { cpu: 'cpu0', host: 'a' }]);
  assert.equal(cpu[2].usage, 1.5);
  assert.equal(cpu[2].n, 3n);
  assert.ok(cpu[2].u instanceof Uint && cpu[2].u.value === 7n);
  assert.equal(cpu[2].s, 'hé');
  assert.deepEqual(temp, ['温度', { 部屋: '会議室' }, { 値: 21.5 }, 2n]);
  const out = b.toWit();
  checkContract(out);
  assert.equal(out.stringData, w.stringData);
});

test('renameField replaces a field of the new name', () => {
  const b = Batch.fromWit(witFrom([['m', {}, { a: 1, b: 2 }, 1n], ['m', {}, { b: 3 }, 2n]]));
  assert.equal(b.renameField('a', 'b'), 1);
  assert.deepEqual([...b].map((m) => m.fields), [{ b: 1 }, { b: 3 }]);
  checkContract(b.toWit());
});

test('setTag keeps tags sorted by UTF-8 bytes and overwrites', () => {
  const b = Batch.fromWit(sample());
  b.setTag('dc', 'x');
  b.setTag('host', 'z');
  b.setTagIfAbsent('cpu', 'never');
  b.setTag('\u{1F600}', 'astral'); // sorts after every BMP key in UTF-8
  b.setTag('\uFFFD', 'bmp');
  const out = b.toWit();
  checkContract(out);
  const again = Batch.fromWit(out);
  assert.deepEqual(again.at(0).tagEntries().map(([k]) => k), ['cpu', 'dc', 'host', '\uFFFD', '\u{1F600}']);
  assert.deepEqual(again.at(1).tagEntries().map(([k]) => k), ['cpu', 'dc', 'host', '部屋', '\uFFFD', '\u{1F600}']);
  assert.equal(again.at(1).tag('cpu'), 'never');
});

test('new non-ASCII strings are given byte offsets', () => {
  const b = Batch.fromWit(sample());
  b.renameMeasurement('cpu', 'プロセッサ');
  b.setTag('ü', 'ñ');
  const out = b.toWit();
  checkContract(out);
  assert.deepEqual([...Batch.fromWit(out)].map((m) => m.name), ['プロセッサ', '温度']);
});

test('retain, retainFields, retainTags, mapNames, append', () => {
  const b = Batch.fromWit(sample());
  b.mapNames((n) => n.toUpperCase());
  b.append(Batch.fromWit(sample()));
  assert.deepEqual([...b].map((m) => m.name), ['CPU', '温度', 'cpu', '温度']);
  assert.equal(b.retainFields((k) => k !== '値'), 2);
  b.retainTags((k) => k === 'host');
  assert.deepEqual([...b].map((m) => m.tags), [{ host: 'a' }, { host: 'a' }]);
  b.retain((m) => m.name === 'cpu');
  assert.equal(b.length, 1);
  checkContract(b.toWit());
});

test('the builder leaves out non-finite floats and empty metrics; the last tag wins', () => {
  const b = new BatchBuilder();
  b.metric('nothing', 1n).field('x', NaN);
  b.metric('m', 2).tag('k', '1').tag('k', '2').field('big', 2n ** 63n).field('inf', Infinity).field('f', 1.5);
  const batch = b.finish();
  assert.equal(batch.length, 1);
  assert.deepEqual(batch.at(0).tags, { k: '2' });
  assert.ok(batch.at(0).field('big') instanceof Uint);
  assert.equal(batch.at(0).field('inf'), undefined);
  const bad = new BatchBuilder();
  bad.metric('m', 1n).field('x', [1]);
  assert.throws(() => bad.finish(), TypeError);
});

test('config errors name the key in the Rust SDK’s words', () => {
  assert.throws(() => graft.Config.parse('{"to": 42}').string('to'), {
    message: 'invalid type: integer `42`, expected a string',
    field: 'to',
  });
  assert.throws(() => graft.Config.parse('{}').string('from'), { field: 'from' });
  assert.throws(() => graft.Config.parse('{"tags": {"a": 1}}').stringMap('tags'), { field: 'tags.a' });
  const c = graft.Config.parse('{"name": "n", "typo": 1}');
  c.string('name');
  assert.throws(() => c.checkUnknown(), { field: 'typo' });
  for (const text of ['{', '[1,2,3]', 'null']) assert.throws(() => graft.Config.parse(text), graft.PluginError);
});

test('exports turn errors into results and batches both ways', () => {
  class Tagger {
    constructor(config) {
      this.value = config.string('value');
    }
    process(batch) {
      batch.setTag('t', this.value);
      return batch;
    }
  }
  const p = graft.processor(Tagger);
  assert.throws(() => p.init('{"value": 1}'), { field: 'value' });
  assert.throws(() => p.init('{"value": "v", "extra": true}'), { message: 'unknown field `extra`' });
  p.init('{"value": "v"}');
  const out = p.process(witFrom([['m', { z: '1' }, { f: 1 }, 5n]]));
  checkContract(out);
  assert.deepEqual(Batch.fromWit(out).at(0).tags, { t: 'v', z: '1' });

  class Broken {
    process() {
      return null.x;
    }
  }
  const broken = graft.processor(Broken);
  broken.init('{}');
  assert.throws(() => broken.process(witFrom([['m', {}, { f: 1 }, 5n]])), (e) => e.message.startsWith('TypeError'));
});

test('output errors map to write errors', () => {
  class Out {
    constructor(config) {
      this.mode = config.string('mode');
    }
    write() {
      if (this.mode === 'retry') throw new graft.Retry('busy');
      if (this.mode === 'partial') throw new graft.Partial([0], [1], 'one bad');
      throw new graft.Reject('never');
    }
  }
  for (const mode of ['retry', 'partial', 'reject']) {
    const o = graft.output(Out);
    o.init(JSON.stringify({ mode }));
    assert.throws(() => o.write(witFrom([['m', {}, { f: 1 }, 5n]])), { tag: mode });
  }
});
