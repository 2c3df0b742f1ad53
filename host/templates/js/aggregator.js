// {{name}}: an aggregator plugin for graft. Counts the metrics of each
// measurement in a period and emits `<measurement><suffix> count=N`, stamped
// with the newest timestamp seen.
import * as graft from './graft-sdk.js';

class Plugin {
  constructor(config) {
    this.suffix = config.string('suffix', '_count');
    this.seen = new Map(); // measurement -> { count, newest }
  }

  add(batch) {
    for (const m of batch) {
      const e = this.seen.get(m.name) ?? { count: 0n, newest: m.timestamp };
      e.count += 1n;
      if (m.timestamp > e.newest) e.newest = m.timestamp;
      this.seen.set(m.name, e);
    }
  }

  push() {
    const b = new graft.BatchBuilder();
    for (const name of [...this.seen.keys()].sort()) {
      const { count, newest } = this.seen.get(name);
      b.metric(name + this.suffix, newest).field('count', count);
    }
    return b.finish();
  }

  reset() {
    this.seen.clear();
  }
}

export const aggregator = graft.aggregator(Plugin);
