"""{{name}}: an aggregator plugin for graft. Counts the metrics of each
measurement in a period and emits `<measurement><suffix> count=N`, stamped
with the newest timestamp seen."""

import graft_sdk as graft


class Plugin:
    def __init__(self, config: graft.Config) -> None:
        self.suffix = config.string("suffix", "_count")
        self.seen = {}  # measurement -> [metrics seen, newest timestamp]

    def add(self, batch: graft.Batch) -> None:
        for m in batch:
            entry = self.seen.setdefault(m.name, [0, m.timestamp])
            entry[0] += 1
            entry[1] = max(entry[1], m.timestamp)

    def push(self) -> graft.Batch:
        b = graft.BatchBuilder()
        for name, (count, newest) in sorted(self.seen.items()):
            b.metric(name + self.suffix, newest).field("count", count)
        return b.finish()

    def reset(self) -> None:
        self.seen.clear()


Aggregator = graft.aggregator(Plugin)
