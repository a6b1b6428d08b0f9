//! Object keys: the `key` template, rendered for one object, and read back
//! from a listed key (to find the objects a crashed run left behind).
//!
//! Escapes: `%{topic}`, `%{partition}`, `%{start_offset}` and
//! `%{end_offset}` (the first and last offset in the object, zero-padded to
//! 20 digits so that keys sort in offset order), and the date escapes `%Y`
//! `%m` `%d` `%H` `%M` `%S`. Every escape but the topic renders a fixed
//! number of digits (the partition excepted, which is known when reading
//! back), so a listed key can be matched against the template exactly.

use flumen_guest_common::dates;

/// Width of a rendered offset: `i64::MAX` has 19 digits.
const OFFSET_WIDTH: usize = 20;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Topic,
    Partition,
    StartOffset,
    EndOffset,
    /// A date escape, rendering this many digits.
    Date(&'static str, usize),
}

/// A parsed `key` template.
#[derive(Debug, Clone)]
pub struct KeyTemplate {
    pieces: Vec<Piece>,
    source: String,
}

/// What fills an object's key.
pub struct KeyFields<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The object's first offset.
    pub start_offset: i64,
    /// The object's last offset.
    pub end_offset: i64,
    /// The time the date escapes show, in milliseconds since the epoch.
    pub millis: i64,
}

impl KeyTemplate {
    /// Parses `template`; an unknown `%{…}` escape is an error naming it.
    pub fn parse(template: &str) -> Result<Self, String> {
        if template.is_empty() || template.starts_with('/') {
            return Err(format!(
                "config key `key` must be a relative object key template, got `{template}`"
            ));
        }
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("%{") {
                let Some(end) = after.find('}') else {
                    return Err(format!(
                        "config key `key` has an unclosed `%{{` in `{template}`"
                    ));
                };
                let piece = match &after[..end] {
                    "topic" => Piece::Topic,
                    "partition" => Piece::Partition,
                    "start_offset" => Piece::StartOffset,
                    "end_offset" => Piece::EndOffset,
                    other => {
                        return Err(format!(
                            "config key `key` has an unknown escape `%{{{other}}}`; the escapes \
                             are %{{topic}}, %{{partition}}, %{{start_offset}}, %{{end_offset}} \
                             and %Y %m %d %H %M %S"
                        ))
                    }
                };
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(piece);
                rest = &after[end + 1..];
                continue;
            }
            if let Some(&(esc, width)) = dates::ESCAPES.iter().find(|(e, _)| rest.starts_with(e)) {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Date(esc, width));
                rest = &rest[esc.len()..];
                continue;
            }
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Self {
            pieces,
            source: template.to_owned(),
        })
    }

    /// The template as configured.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template names each object by its start offset (and
    /// its topic and partition), so that a rewritten object replaces the
    /// first one: what `exactly_once` needs.
    pub fn names_by_start_offset(&self) -> bool {
        [Piece::Topic, Piece::Partition, Piece::StartOffset]
            .iter()
            .all(|p| self.pieces.contains(p))
    }

    /// Whether it has `%{end_offset}`: two cuts of the same events from
    /// one offset would then get two keys, which `exactly_once` refuses.
    pub fn has_end_offset(&self) -> bool {
        self.pieces.contains(&Piece::EndOffset)
    }

    /// Whether it has a date escape.
    pub fn has_date(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Date(..)))
    }

    /// The key of one object.
    pub fn render(&self, f: &KeyFields<'_>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Topic => out.push_str(f.topic),
                Piece::Partition => out.push_str(&f.partition.to_string()),
                Piece::StartOffset => out.push_str(&format!("{:0OFFSET_WIDTH$}", f.start_offset)),
                Piece::EndOffset => out.push_str(&format!("{:0OFFSET_WIDTH$}", f.end_offset)),
                Piece::Date(esc, _) => out.push_str(&dates::render(esc, f.millis)),
            }
        }
        out
    }

    /// The part of every key of `topic`/`partition` that is the same for
    /// all its objects: what to list them by.
    pub fn prefix(&self, topic: &str, partition: i32) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Topic => out.push_str(topic),
                Piece::Partition => out.push_str(&partition.to_string()),
                _ => break,
            }
        }
        out
    }

    /// Where a listing of `prefix` may start for the objects at or after
    /// offset `first`: when the start offset comes right after the prefix,
    /// every such key sorts after `prefix` + the zero-padded `first - 1`.
    /// `None` when the template puts something else first.
    pub fn start_after(&self, topic: &str, partition: i32, first: i64) -> Option<String> {
        let fixed = self
            .pieces
            .iter()
            .take_while(|p| matches!(p, Piece::Text(_) | Piece::Topic | Piece::Partition))
            .count();
        (self.pieces.get(fixed) == Some(&Piece::StartOffset) && first > 0).then(|| {
            format!(
                "{}{:0OFFSET_WIDTH$}",
                self.prefix(topic, partition),
                first - 1
            )
        })
    }

    /// The start offset of `key` if it is a key this template renders for
    /// `topic`/`partition`.
    pub fn start_offset_of(&self, key: &str, topic: &str, partition: i32) -> Option<i64> {
        let partition = partition.to_string();
        let mut rest = key;
        let mut start = None;
        for p in &self.pieces {
            rest = match p {
                Piece::Text(t) => rest.strip_prefix(t.as_str())?,
                Piece::Topic => rest.strip_prefix(topic)?,
                Piece::Partition => rest.strip_prefix(partition.as_str())?,
                Piece::StartOffset => {
                    let (d, r) = digits(rest, OFFSET_WIDTH)?;
                    start = Some(d.parse().ok()?);
                    r
                }
                Piece::EndOffset => digits(rest, OFFSET_WIDTH)?.1,
                Piece::Date(_, n) => digits(rest, *n)?.1,
            };
        }
        if rest.is_empty() {
            start
        } else {
            None
        }
    }
}

/// The first `n` bytes of `rest` if they are digits, and what follows.
fn digits(rest: &str, n: usize) -> Option<(&str, &str)> {
    (rest.len() >= n && rest.as_bytes()[..n].iter().all(u8::is_ascii_digit))
        .then(|| (&rest[..n], &rest[n..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(start: i64, end: i64) -> KeyFields<'static> {
        KeyFields {
            topic: "orders",
            partition: 3,
            start_offset: start,
            end_offset: end,
            // 2026-12-06T15:04:05Z
            millis: 1_796_569_445_000,
        }
    }

    #[test]
    fn renders_and_reads_back() {
        let t = KeyTemplate::parse(
            "raw/%{topic}/dt=%Y-%m-%d/%H/p%{partition}-%{start_offset}-%{end_offset}.jsonl.gz",
        )
        .expect("valid");
        let key = t.render(&fields(42, 99));
        assert_eq!(
            key,
            "raw/orders/dt=2026-12-06/15/p3-00000000000000000042-00000000000000000099.jsonl.gz"
        );
        assert_eq!(t.start_offset_of(&key, "orders", 3), Some(42));
        assert_eq!(t.start_offset_of(&key, "orders", 31), None);
        assert_eq!(t.start_offset_of(&key, "order", 3), None);
        assert_eq!(t.start_offset_of(&format!("{key}.tmp"), "orders", 3), None);
        assert_eq!(t.prefix("orders", 3), "raw/orders/dt=");
        assert_eq!(t.start_after("orders", 3, 42), None);
        let flat =
            KeyTemplate::parse("%{topic}/%{partition}/%{start_offset}.jsonl").expect("valid");
        assert_eq!(
            flat.start_after("o", 1, 42).as_deref(),
            Some("o/1/00000000000000000041")
        );
        assert_eq!(flat.start_after("o", 1, 0), None);
        assert!(t.names_by_start_offset() && t.has_date() && t.has_end_offset());
        assert!(!flat.has_end_offset());
    }

    #[test]
    fn refuses_unknown_escapes() {
        let e = KeyTemplate::parse("%{topic}/%{offset}").unwrap_err();
        assert!(e.contains("unknown escape `%{offset}`"), "{e}");
        assert!(KeyTemplate::parse("/abs").is_err());
        let t = KeyTemplate::parse("%{topic}/%{end_offset}").expect("valid");
        assert!(!t.names_by_start_offset() && !t.has_date());
        assert_eq!(t.prefix("t", 0), "t/");
    }
}
