"""{{name}}: an input plugin for graft. Every gather emits one metric with a
counter and a float."""

import graft_sdk as graft


class Plugin:
    def __init__(self, config: graft.Config) -> None:
        self.measurement = config.string("measurement", "{{name}}")
        self.step = config.number("step", 0.5)
        if not self.measurement:
            raise graft.PluginError.config("measurement", "must not be empty")
        self.count = 0

    def gather(self) -> graft.Batch:
        b = graft.BatchBuilder()
        (b.metric(self.measurement, graft.now())
            .tag("source", "{{name}}")
            .field("count", self.count)
            .field("value", self.count * self.step))
        self.count += 1
        return b.finish()


Input = graft.input(Plugin)
