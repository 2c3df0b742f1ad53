// Example processor: renames a field and adds tags to every metric.
//
// The same transform as examples/rename-processor (Rust) and
// examples/rename-processor-python, checked against the same golden cases
// in examples/rename-processor/cases.

import * as graft from './graft-sdk.js'; // sdk/js/graft-sdk.js, added by sdk/js/build.mjs

class Rename {
  constructor(config) {
    this.from = config.string('from'); // field to rename ...
    this.to = config.string('to'); // ... to this name
    this.tags = config.stringMap('tags', {}); // tags to set on every metric
  }

  process(batch) {
    batch.renameField(this.from, this.to);
    for (const key of Object.keys(this.tags).sort()) batch.setTag(key, this.tags[key]);
    return batch;
  }
}

export const processor = graft.processor(Rename);
