// {{name}}: an input plugin for graft. Every gather emits one metric with a
// counter and a float.
import * as graft from './graft-sdk.js';

class Plugin {
  constructor(config) {
    this.measurement = config.string('measurement', '{{name}}');
    this.step = config.number('step', 0.5);
    if (!this.measurement) throw new graft.PluginError('must not be empty', 'measurement');
    this.count = 0n;
  }

  gather() {
    const b = new graft.BatchBuilder();
    b.metric(this.measurement, graft.now())
      .tag('source', '{{name}}')
      .field('count', this.count)
      .field('value', Number(this.count) * this.step);
    this.count += 1n;
    return b.finish();
  }
}

export const input = graft.input(Plugin);
