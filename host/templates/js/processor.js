// {{name}}: a processor plugin for graft. Sets tags on every metric and,
// optionally, renames one field.
import * as graft from './graft-sdk.js';

class Plugin {
  constructor(config) {
    this.tags = config.stringMap('tags', {});
    this.renameFrom = config.string('rename_from', null);
    this.renameTo = config.string('rename_to', null);
    if ((this.renameFrom === null) !== (this.renameTo === null)) {
      throw new graft.PluginError('rename_from and rename_to go together', 'rename_to');
    }
  }

  process(batch) {
    if (this.renameFrom !== null) batch.renameField(this.renameFrom, this.renameTo);
    for (const key of Object.keys(this.tags).sort()) batch.setTag(key, this.tags[key]);
    return batch;
  }
}

export const processor = graft.processor(Plugin);
