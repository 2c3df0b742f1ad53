"""{{name}}: an output plugin for graft. Logs a line per batch written;
replace `write` with delivery to your system (granting the plugin the
`permissions` it needs in graft.toml)."""

import graft_sdk as graft


class Plugin:
    def __init__(self, config: graft.Config) -> None:
        self.max_batch = config.integer("max_batch", 0, min=0)  # 0: no limit
        self.written = 0

    def write(self, batch: graft.Batch) -> None:
        if self.max_batch and len(batch) > self.max_batch:
            # Transient: graft keeps the metrics and retries.
            raise graft.Retry(f"{len(batch)} metrics is more than max_batch = {self.max_batch}")
        self.written += len(batch)
        graft.debug(f"wrote {len(batch)} metrics ({self.written} in all)")


Output = graft.output(Plugin)
