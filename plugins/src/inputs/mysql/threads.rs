//! The process list's thread states as Telegraf counts them: a fixed list
//! of states (each reported, zero or not) and the mapping of MySQL's many
//! state texts onto it (`findThreadState`).

/// Every state Telegraf reports, as `threads_<state>` with `_` for spaces.
pub const STATES: &[&str] = &[
    "after create",
    "altering table",
    "analyzing",
    "checking permissions",
    "checking table",
    "cleaning up",
    "closing tables",
    "converting heap to myisam",
    "copying to tmp table",
    "creating sort index",
    "creating table",
    "creating tmp table",
    "deleting",
    "executing",
    "execution of init_command",
    "end",
    "freeing items",
    "flushing tables",
    "fulltext initialization",
    "idle",
    "init",
    "killed",
    "waiting for lock",
    "logging slow query",
    "login",
    "manage keys",
    "opening tables",
    "optimizing",
    "preparing",
    "reading from net",
    "removing duplicates",
    "removing tmp table",
    "reopen tables",
    "repair by sorting",
    "repair done",
    "repair with keycache",
    "replication master",
    "rolling back",
    "searching rows for update",
    "sending data",
    "sorting for group",
    "sorting for order",
    "sorting index",
    "sorting result",
    "statistics",
    "updating",
    "waiting for tables",
    "waiting for table flush",
    "waiting on cond",
    "writing to net",
    "other",
];

/// Plain state texts mapped onto one of [`STATES`].
const MAPPINGS: &[(&str, &str)] = &[
    ("user sleep", "idle"),
    ("creating index", "altering table"),
    ("committing alter table to storage engine", "altering table"),
    ("discard or import tablespace", "altering table"),
    ("rename", "altering table"),
    ("setup", "altering table"),
    ("renaming result table", "altering table"),
    ("preparing for alter table", "altering table"),
    ("copying to group table", "copying to tmp table"),
    ("copy to tmp table", "copying to tmp table"),
    ("query end", "end"),
    ("update", "updating"),
    ("updating main table", "updating"),
    ("updating reference tables", "updating"),
    ("system lock", "waiting for lock"),
    ("user lock", "waiting for lock"),
    ("table lock", "waiting for lock"),
    ("deleting from main table", "deleting"),
    ("deleting from reference tables", "deleting"),
];

/// The state a process list row counts under.
pub fn find(command: &str, state: &str) -> &'static str {
    let command = command.to_lowercase().replace('_', " ");
    let state = state.to_lowercase().replace('_', " ");
    if let Some(s) = STATES.iter().find(|s| **s == state) {
        return s;
    }
    if let Some((_, s)) = MAPPINGS.iter().find(|(from, _)| *from == state) {
        return s;
    }
    if state.contains("waiting for") && state.contains("lock") {
        return "waiting for lock";
    }
    match command.as_str() {
        "sleep" if state.is_empty() => "idle",
        "query" => "executing",
        "binlog dump" => "replication master",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn states_map_as_telegraf_maps_them() {
        use super::find;
        assert_eq!(find("Sleep", ""), "idle");
        assert_eq!(find("Query", "Sending data"), "sending data");
        assert_eq!(
            find("Query", "Waiting for table metadata lock"),
            "waiting for lock"
        );
        assert_eq!(find("Query", "query end"), "end");
        assert_eq!(find("Query", "something new"), "executing");
        assert_eq!(find("Daemon", "InnoDB purge worker"), "other");
        assert_eq!(find("Binlog Dump", "x"), "replication master");
    }
}
