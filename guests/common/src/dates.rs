//! The date escapes of path and key templates (Flume's HDFS sink's `%Y`,
//! `%m`, `%d`, `%H`, `%M`, `%S`), in UTC.

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's
/// `civil_from_days`.
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The escapes and the width of what each renders (all are digits).
pub const ESCAPES: [(&str, usize); 6] = [
    ("%Y", 4),
    ("%m", 2),
    ("%d", 2),
    ("%H", 2),
    ("%M", 2),
    ("%S", 2),
];

/// Replaces the date escapes in `template` with the UTC date and time of
/// `millis` since the epoch.
pub fn render(template: &str, millis: i64) -> String {
    if !template.contains('%') {
        return template.to_owned();
    }
    let secs = millis.div_euclid(1000);
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    template
        .replace("%Y", &format!("{y:04}"))
        .replace("%m", &format!("{mo:02}"))
        .replace("%d", &format!("{d:02}"))
        .replace("%H", &format!("{:02}", sod / 3600))
        .replace("%M", &format!("{:02}", sod % 3600 / 60))
        .replace("%S", &format!("{:02}", sod % 60))
}

/// Whether `template` holds any date escape.
pub fn has_escape(template: &str) -> bool {
    ESCAPES.iter().any(|(e, _)| template.contains(e))
}

/// Milliseconds since the epoch now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_utc_dates() {
        // 2024-02-29T23:59:58.5Z
        let millis = 1_709_251_198_500;
        assert_eq!(
            super::render("%Y/%m/%d/%H%M%S", millis),
            "2024/02/29/235958"
        );
        assert_eq!(super::civil(0), (1970, 1, 1));
        assert!(super::has_escape("a/%H/b") && !super::has_escape("a/%{topic}"));
    }
}
