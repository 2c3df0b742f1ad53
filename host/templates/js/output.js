// {{name}}: an output plugin for graft. Logs a line per batch written;
// replace `write` with delivery to your system (granting the plugin the
// `permissions` it needs in graft.toml).
import * as graft from './graft-sdk.js';

class Plugin {
  constructor(config) {
    this.maxBatch = config.integer('max_batch', 0); // 0: no limit
    this.written = 0;
  }

  write(batch) {
    if (this.maxBatch && batch.length > this.maxBatch) {
      // Transient: graft keeps the metrics and retries.
      throw new graft.Retry(`${batch.length} metrics is more than max_batch = ${this.maxBatch}`);
    }
    this.written += batch.length;
    graft.debug(`wrote ${batch.length} metrics (${this.written} in all)`);
  }
}

export const output = graft.output(Plugin);
