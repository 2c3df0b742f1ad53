"""Example processor: renames a field and adds tags to every metric.

The same transform as examples/rename-processor (Rust) and
examples/rename-processor-js, checked against the same golden cases in
examples/rename-processor/cases.
"""

import graft_sdk as graft


class Rename:
    def __init__(self, config: graft.Config) -> None:
        self.old = config.string("from")  # field to rename ...
        self.new = config.string("to")  # ... to this name
        self.tags = config.string_map("tags", default={})  # tags to set on every metric

    def process(self, batch: graft.Batch) -> graft.Batch:
        batch.rename_field(self.old, self.new)
        for key, value in sorted(self.tags.items()):
            batch.set_tag(key, value)
        return batch


Processor = graft.processor(Rename)
