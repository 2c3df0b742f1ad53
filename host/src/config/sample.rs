//! The commented sample configuration (`graft config`) and the built-in
//! default that `graft run` uses without `--config`.

/// What `graft run` runs with no configuration: memory metrics to stdout.
pub const DEFAULT: &str = r#"
[agent]
  interval = "10s"
  flush_interval = "10s"

[[inputs.mem]]

[[outputs.file]]
  files = ["stdout"]
"#;

/// `graft config` prints this.
pub const SAMPLE: &str = r#"# graft configuration (Telegraf's format: an existing telegraf.conf runs as is,
# as far as graft has its plugins).
#
# Environment variables can be used anywhere: ${VAR}, $VAR, ${VAR:-default}.

# Tags added to every metric (unless the metric already has the key).
[global_tags]
  # dc = "us-east-1"

[agent]
  ## How often inputs gather.
  interval = "10s"
  ## Align gathers to multiples of the interval (:00, :10, ...).
  round_interval = true
  ## Most metrics an output writes at once, and most it buffers while it
  ## cannot write (the oldest are dropped beyond that).
  metric_batch_size = 1000
  metric_buffer_limit = 10000
  ## Random delay before each gather.
  collection_jitter = "0s"
  ## How often outputs write, and a random extra delay.
  flush_interval = "10s"
  flush_jitter = "0s"
  ## Timestamp rounding; by default 1s for intervals of a second or more.
  # precision = "0s"
  ## The `host` tag.
  # hostname = ""
  omit_hostname = false
  ## Where compiled WASM plugins are cached ("" = no cache).
  # wasm_cache_dir = "~/.cache/graft"
  ## Where outputs buffer: "memory", or "disk" (a write-ahead log in
  ## buffer_directory, one directory per output, that survives a crash or a
  ## restart; an output may set its own buffer_strategy and buffer_directory).
  # buffer_strategy = "memory"
  # buffer_directory = "/var/lib/graft/buffers"

###############################################################################
#                                  INPUTS                                     #
###############################################################################

# Memory usage, as Telegraf's inputs.mem.
[[inputs.mem]]
  ## Options every input has: alias, interval, precision, collection_jitter,
  ## collection_offset, name_override, name_prefix, name_suffix, [inputs.x.tags],
  ## and, like every plugin, the selectors and modifiers namepass, namedrop,
  ## [inputs.x.tagpass], [inputs.x.tagdrop], fieldinclude, fieldexclude,
  ## taginclude, tagexclude (glob patterns).
  # collect_extended = false

# Accept writes from InfluxDB clients and Telegraf agents (/write,
# /api/v2/write, /ping, /health).
# [[inputs.influxdb_listener]]
#   service_address = ":8186"
#   max_body_size = "32MiB"
#   ## basic_username = "", basic_password = "", token = "",
#   ## database_tag = "", retention_policy_tag = "", bucket_tag = "",
#   ## max_undelivered_metrics = 0

# graft's own metrics, shaped like Telegraf's internal input: internal_agent,
# internal_gather, internal_process, internal_aggregate, internal_write.
# [[inputs.internal]]
#   collect_memstats = true

# A WebAssembly input plugin.
# [[inputs.wasm]]
#   path = "plugins/sine.wasm"
#   ## The plugin's own settings, handed to its init() as JSON.
#   [inputs.wasm.config]
#     amplitude = 10.0
#   ## Nothing is granted by default.
#   [inputs.wasm.permissions]          # nothing is granted by default
#     read_dirs = []                    # read-only directories
#     write_dirs = []                   # read-write directories
#     env = []                          # environment variables it may read
#     http = []                         # "host[:port]" or { host = "h:p", methods = ["GET"] }
#     tcp = []                          # "ip:port" or "ip:*"
#     udp = []
#   [inputs.wasm.limits]
#     memory = "256MiB"
#     call_timeout = "10s"
#     # fuel = 50000000                 # instructions per call (off by default)
#     max_return = "64MiB"
#     # recycle_memory = "64MiB"        # fresh instance once memory passes this (JS plugins)

###############################################################################
#                                PROCESSORS                                   #
###############################################################################

# [[processors.rename]]
#   [[processors.rename.replace]]
#     measurement = "network_interface_throughput"   # or tag = "...", or field = "..."
#     dest = "throughput"

# [[processors.wasm]]
#   path = "plugins/rename.wasm"
#   ## Processors run by ascending order, then in file order.
#   order = 1
#   ## What to do with a batch the plugin fails on: "pass" or "drop".
#   on_error = "pass"
#   [processors.wasm.config]
#     from = "used_percent"
#     to = "used_pct"

###############################################################################
#                               AGGREGATORS                                   #
###############################################################################

# [[aggregators.wasm]]
#   path = "plugins/stats.wasm"
#   period = "30s"
#   drop_original = false

###############################################################################
#                                 OUTPUTS                                     #
###############################################################################

# Line protocol to stdout or files, as Telegraf's outputs.file.
[[outputs.file]]
  files = ["stdout"]
  data_format = "influx"
  ## Options every output has: alias, flush_interval, flush_jitter,
  ## metric_batch_size, metric_buffer_limit, buffer_strategy,
  ## buffer_directory, buffer_fsync ("batch", "interval", "never"),
  ## buffer_fsync_interval, buffer_max_bytes, buffer_segment_size.

# InfluxDB 1.x, through its /write API.
# [[outputs.influxdb]]
#   urls = ["http://127.0.0.1:8086"]
#   database = "telegraf"
#   ## database_tag = "", exclude_database_tag = false, retention_policy = "",
#   ## write_consistency = "", skip_database_creation = false, timeout = "5s",
#   ## username = "", password = "", content_encoding = "gzip",
#   ## http_headers = {}, tls_ca = "", tls_cert = "", tls_key = "",
#   ## insecure_skip_verify = false, influx_uint_support = false

# InfluxDB 2.x/3.x, through /api/v2/write.
# [[outputs.influxdb_v2]]
#   urls = ["http://127.0.0.1:8086"]
#   token = "${INFLUX_TOKEN}"
#   organization = ""
#   bucket = ""
#   ## bucket_tag = "", exclude_bucket_tag = false, timeout = "5s",
#   ## content_encoding = "gzip"
"#;
