//! A Kafka source's interceptors, as the guest library's interceptors.

use super::properties::{bool_prop, kind_of, Agent};
use super::write::{strings, GuestTable};

/// The source's interceptors, in order.
pub fn interceptors(a: &Agent<'_>, source: &str, unmapped: &mut Vec<String>) -> Vec<GuestTable> {
    let mut tables = Vec::new();
    for i in a.list(&format!("{source}.interceptors")) {
        let p = format!("{source}.interceptors.{i}");
        let get = |key: &str| a.get(&format!("{p}.{key}"));
        let preserve = |default: bool| {
            bool_prop(get("preserveExisting"))
                .unwrap_or(default)
                .to_string()
        };
        let raw_type = get("type").unwrap_or("unset");
        let mut host_interceptor = false;
        let (component, config): (&str, Vec<(&str, String)>) = match kind_of(raw_type) {
            "timestamp" => (
                "timestamp",
                vec![
                    (
                        "header",
                        get("headerName").unwrap_or("timestamp").to_owned(),
                    ),
                    ("preserve_existing", preserve(false)),
                ],
            ),
            "host" => {
                if bool_prop(get("useIP")).unwrap_or(true) {
                    unmapped.push(format!(
                        "interceptor `{i}`: useIP (Flume's default): a component cannot look up \
                         the address; the host name from $HOSTNAME is stamped instead"
                    ));
                }
                host_interceptor = true;
                (
                    "host_header",
                    vec![
                        ("header", get("hostHeader").unwrap_or("host").to_owned()),
                        ("preserve_existing", preserve(false)),
                    ],
                )
            }
            "static" => (
                "static_header",
                vec![
                    ("header", get("key").unwrap_or("key").to_owned()),
                    ("value", get("value").unwrap_or("value").to_owned()),
                    ("preserve_existing", preserve(true)),
                ],
            ),
            "regex_filter" => (
                "filter",
                vec![
                    ("pattern", get("regex").unwrap_or(".*").to_owned()),
                    (
                        "mode",
                        if bool_prop(get("excludeEvents")).unwrap_or(false) {
                            "drop"
                        } else {
                            "keep"
                        }
                        .to_owned(),
                    ),
                ],
            ),
            "regex_extractor" => {
                let names: Vec<String> = a
                    .get(&format!("{p}.serializers"))
                    .map(|s| {
                        s.split_whitespace()
                            .map(|s| {
                                get(&format!("serializers.{s}.name"))
                                    .unwrap_or("")
                                    .to_owned()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut config = vec![("pattern", get("regex").unwrap_or("").to_owned())];
                if !names.is_empty() {
                    config.push(("headers", names.join(",")));
                }
                ("regex_extractor", config)
            }
            "search_replace" => (
                "search_replace",
                vec![
                    (
                        "search_pattern",
                        get("searchPattern").unwrap_or("").to_owned(),
                    ),
                    (
                        "replace_string",
                        get("replaceString").unwrap_or("").to_owned(),
                    ),
                ],
            ),
            "uuid" => (
                "uuid_header",
                vec![
                    ("header", get("headerName").unwrap_or("id").to_owned()),
                    ("prefix", get("prefix").unwrap_or("").to_owned()),
                    ("preserve_existing", preserve(true)),
                ],
            ),
            _ => {
                unmapped.push(format!(
                    "interceptor `{i}` (type {raw_type}): no counterpart in the guest library; \
                     write one with `flumen new`"
                ));
                continue;
            }
        };
        let mut table = GuestTable::new("interceptor", i, component);
        table.config = config.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        if host_interceptor {
            // The host name comes from flumen's own environment.
            table.extra.push(("env_from_host", strings(["HOSTNAME"])));
        }
        tables.push(table);
    }
    tables
}
