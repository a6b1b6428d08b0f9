//! What a ClickHouse answer to an insert means. ClickHouse answers an
//! exception with `Code: N, e.displayText() = …` in the body, and a row it
//! cannot parse with `(at row N)` (counting from 1); the HTTP status alone
//! does not tell (a bad row may come back as 400 or 500).

/// The verdict on one failed insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Row `index` (from 0) of the insert is bad; the rest were not
    /// inserted and can be sent again without it.
    BadRow { index: usize, reason: String },
    /// The insert failed for something outside the rows; sending it again
    /// later may work (a timeout, an overloaded server, a proxy's 5xx).
    Transient(String),
    /// It cannot work until the operator acts (wrong password, unknown
    /// table): the cause, named.
    Fatal(String),
    /// Some row is bad, but the server did not say which.
    Unlocated(String),
}

/// Error codes meaning "try again later".
const TRANSIENT: &[u32] = &[
    159, // TIMEOUT_EXCEEDED
    164, // READONLY (a replica catching up)
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    319, // UNKNOWN_STATUS_OF_INSERT
    425, // SYSTEM_ERROR
];

/// Error codes that no retry fixes, with what to do.
fn fatal(code: u32, table: &str, user: &str, vars: &str) -> Option<String> {
    Some(match code {
        192 | 516 => format!(
            "ClickHouse does not know user `{user}` or refused the password (Code {code}): \
             check {vars}"
        ),
        193 => format!("ClickHouse refused the password of user `{user}` (Code 193): check {vars}"),
        60 => format!(
            "table `{table}` does not exist in ClickHouse (Code 60): create it, or fix `table`"
        ),
        81 => {
            format!("the database of `{table}` does not exist in ClickHouse (Code 81): fix `table`")
        }
        497 => format!("user `{user}` may not insert into `{table}` (Code 497): grant INSERT"),
        62 => {
            format!("ClickHouse could not parse the insert into `{table}` (Code 62): check `table`")
        }
        _ => return None,
    })
}

/// The first line of the server's message, without ClickHouse's wrapping.
fn summary(body: &str) -> String {
    let text = body
        .split_once("e.displayText() = ")
        .map_or(body, |(_, rest)| rest);
    let text = text.split(", e.what()").next().unwrap_or(text);
    text.trim().chars().take(400).collect()
}

/// The error code in `body`, if any.
fn code(body: &str) -> Option<u32> {
    let rest = body.trim_start().strip_prefix("Code: ")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Reads an answer with `status` and `body` to an insert of `rows` rows.
pub fn read(status: u16, body: &str, rows: usize, table: &str, user: &str, vars: &str) -> Refusal {
    let Some(code) = code(body) else {
        let said = body.trim().chars().take(200).collect::<String>();
        return if status >= 500 || status == 408 || status == 429 {
            Refusal::Transient(format!("HTTP {status}: {said}"))
        } else {
            Refusal::Fatal(format!("ClickHouse answered HTTP {status}: {said}"))
        };
    };
    if let Some(message) = fatal(code, table, user, vars) {
        return Refusal::Fatal(message);
    }
    if TRANSIENT.contains(&code) {
        return Refusal::Transient(format!("Code {code}: {}", summary(body)));
    }
    let reason = format!(
        "ClickHouse refused the row (Code {code}): {}",
        summary(body)
    );
    let at_row = body
        .rsplit_once("(at row ")
        .and_then(|(_, rest)| rest.split(')').next())
        .and_then(|n| n.trim().parse::<usize>().ok());
    match at_row {
        Some(n) if (1..=rows).contains(&n) => Refusal::BadRow {
            index: n - 1,
            reason,
        },
        _ => Refusal::Unlocated(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Answers seen from clickhouse-server 18.16.
    const BAD_ROW: &str = "Code: 27, e.displayText() = DB::Exception: Cannot parse input: \
        expected , before: .5}\\n: (at row 2)\n, e.what() = DB::Exception\n";
    const UNKNOWN_FIELD: &str = "Code: 117, e.displayText() = DB::Exception: Unknown field \
        found while parsing JSONEachRow format: zz: (at row 2)\n, e.what() = DB::Exception\n";

    fn read3(status: u16, body: &str) -> Refusal {
        read(status, body, 3, "db.t", "flumen", "CLICKHOUSE_PASSWORD")
    }

    #[test]
    fn locates_bad_rows() {
        assert!(
            matches!(read3(500, BAD_ROW), Refusal::BadRow { index: 1, reason } if reason.contains("Code 27") && reason.contains("at row 2"))
        );
        assert!(matches!(
            read3(500, UNKNOWN_FIELD),
            Refusal::BadRow { index: 1, .. }
        ));
        // A row number outside the insert is not believed.
        assert!(matches!(
            read(500, BAD_ROW, 1, "t", "u", "v"),
            Refusal::Unlocated(_)
        ));
    }

    #[test]
    fn names_what_the_operator_must_fix() {
        let wrong = "Code: 193, e.displayText() = DB::Exception: Wrong password for user flumen, e.what() = DB::Exception";
        assert!(
            matches!(read3(401, wrong), Refusal::Fatal(m) if m.contains("password of user `flumen`") && m.contains("CLICKHOUSE_PASSWORD"))
        );
        let table = "Code: 60, e.displayText() = DB::Exception: Table default.t doesn't exist., e.what() = DB::Exception";
        assert!(
            matches!(read3(404, table), Refusal::Fatal(m) if m.contains("`db.t` does not exist"))
        );
    }

    #[test]
    fn retries_what_may_pass_later() {
        assert!(matches!(
            read3(503, "Service Unavailable"),
            Refusal::Transient(_)
        ));
        assert!(matches!(
            read3(500, "Code: 252, e.displayText() = Too many parts"),
            Refusal::Transient(_)
        ));
        assert!(matches!(read3(400, "Bad Request"), Refusal::Fatal(_)));
    }
}
