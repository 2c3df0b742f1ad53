"""{{name}}: a processor plugin for graft. Sets tags on every metric and,
optionally, renames one field."""

import graft_sdk as graft


class Plugin:
    def __init__(self, config: graft.Config) -> None:
        self.tags = config.string_map("tags", {})
        self.rename_from = config.string("rename_from", None)
        self.rename_to = config.string("rename_to", None)
        if (self.rename_from is None) != (self.rename_to is None):
            raise graft.PluginError.config("rename_to", "rename_from and rename_to go together")

    def process(self, batch: graft.Batch) -> graft.Batch:
        if self.rename_from is not None:
            batch.rename_field(self.rename_from, self.rename_to)
        for key, value in sorted(self.tags.items()):
            batch.set_tag(key, value)
        return batch


Processor = graft.processor(Plugin)
