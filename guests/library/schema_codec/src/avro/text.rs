//! The text forms of Avro's logical types (docs/schemas.md), both ways:
//! what `decode` writes and `encode` reads (and the s3 sink's typed
//! Parquet columns read).

use flumen_guest_common::dates::civil;

/// `unscaled × 10^-scale`, exactly, with `scale` fraction digits.
pub fn decimal_text(unscaled: &num_bigint::BigInt, scale: usize) -> String {
    let digits = unscaled.magnitude().to_string();
    let sign = if unscaled.sign() == num_bigint::Sign::Minus {
        "-"
    } else {
        ""
    };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{sign}{whole}.{fraction}")
}

/// Days since the epoch as `YYYY-MM-DD`.
pub fn date(days: i64) -> String {
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Nanoseconds since midnight as `HH:MM:SS` and `digits` fraction digits.
pub fn time_of_day(nanos: i64, digits: u32) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000) / 10_i64.pow(9 - digits);
    format!(
        "{:02}:{:02}:{:02}.{frac:0width$}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        width = digits as usize
    )
}

/// Nanoseconds since the epoch as RFC 3339 with `digits` fraction digits.
pub fn timestamp(nanos: i128, digits: u32, utc: bool) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000) as i64;
    let day = time_of_day(secs.rem_euclid(86_400) * 1_000_000_000 + frac, digits);
    format!(
        "{}T{day}{}",
        date(secs.div_euclid(86_400)),
        if utc { "Z" } else { "" }
    )
}

/// The unscaled integer of a decimal's text (`"-12.30"` at scale 2 is
/// -1230); more fraction digits than `scale` is an error, fewer are padded.
pub fn parse_decimal(text: &str, scale: usize) -> Result<num_bigint::BigInt, String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > scale {
        return Err(format!(
            "`{text}` has {} fraction digits, and the schema's scale is {scale}",
            fraction.len()
        ));
    }
    let digits = format!("{whole}{fraction:0<scale$}");
    digits
        .parse()
        .map_err(|_| format!("`{text}` is not a decimal number"))
}

/// Days since the epoch of a civil date (the inverse of `civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Splits `text` at `sep` into numbers; `None` if any part is not one.
fn numbers(text: &str, sep: char) -> Option<Vec<i64>> {
    text.split(sep).map(|p| p.parse().ok()).collect()
}

/// Days since the epoch of `"YYYY-MM-DD"`.
pub fn parse_date(text: &str) -> Result<i64, String> {
    match numbers(text, '-').as_deref() {
        Some(&[y, m, d]) if (1..=12).contains(&m) && (1..=31).contains(&d) => {
            Ok(days_from_civil(y, m, d))
        }
        _ => Err(format!("`{text}` is not a date (YYYY-MM-DD)")),
    }
}

/// Nanoseconds since midnight of `"HH:MM:SS[.fraction]"`.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a time of day (HH:MM:SS.fff)");
    let (hms, fraction) = text.split_once('.').unwrap_or((text, ""));
    let Some(&[h, m, s]) = numbers(hms, ':').as_deref() else {
        return Err(bad());
    };
    if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..61).contains(&s) || fraction.len() > 9
    {
        return Err(bad());
    }
    let frac: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().map_err(|_| bad())?
    };
    Ok(((h * 60 + m) * 60 + s) * 1_000_000_000 + frac)
}

/// Nanoseconds since the epoch of `"YYYY-MM-DDTHH:MM:SS[.fraction]"`,
/// ending in `Z` if `utc`.
pub fn parse_timestamp(text: &str, utc: bool) -> Result<i128, String> {
    let bad = || {
        let z = if utc { "Z" } else { "" };
        format!("`{text}` is not a timestamp (YYYY-MM-DDTHH:MM:SS.fff{z})")
    };
    let body = if utc {
        text.strip_suffix('Z').ok_or_else(bad)?
    } else {
        text
    };
    let (day, time) = body.split_once('T').ok_or_else(bad)?;
    let days = parse_date(day).map_err(|_| bad())?;
    let nanos = parse_time(time).map_err(|_| bad())?;
    Ok(i128::from(days) * 86_400_000_000_000 + i128::from(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_form_reads_back() {
        for days in [-719_468, -1, 0, 19_844, 2_932_896] {
            assert_eq!(parse_date(&date(days)), Ok(days), "{}", date(days));
        }
        let nanos = 3_723_004_005_000;
        assert_eq!(parse_time(&time_of_day(nanos, 6)), Ok(nanos));
        let t = 1_714_564_800_250_000_000i128;
        assert_eq!(parse_timestamp(&timestamp(t, 3, true), true), Ok(t));
        assert_eq!(
            parse_timestamp(&timestamp(-1_000_000, 3, false), false),
            Ok(-1_000_000)
        );
        assert!(
            parse_timestamp("2024-05-01T12:00:00", true).is_err(),
            "no Z"
        );
        for (text, scale) in [
            ("-12.30", 2),
            ("0.005", 3),
            ("7", 0),
            ("123456789012345678901.23", 2),
        ] {
            assert_eq!(
                decimal_text(&parse_decimal(text, scale).unwrap(), scale),
                text
            );
        }
        assert_eq!(decimal_text(&parse_decimal("1.5", 3).unwrap(), 3), "1.500");
        assert!(parse_decimal("1.2345", 2).is_err());
        assert!(parse_date("2024-13-01").is_err());
    }
}
