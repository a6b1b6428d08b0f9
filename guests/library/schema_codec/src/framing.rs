//! Confluent's wire framings: where an event says which schema wrote it.
//!
//! Three framings exist, and a topic may mix them:
//! - magic byte 0, then the schema id as 4 bytes big-endian, then the
//!   payload (the classic framing);
//! - magic byte 1, then the schema's 16-byte GUID, then the payload;
//! - the id or GUID (framed as above, with nothing after it) in the header
//!   `__value_schema_id` (or `__key_schema_id` for the key), and the
//!   payload unprefixed.
//!
//! A Protobuf frame adds, between the id and the payload, the path of the
//! message type within its `.proto` file: a zigzag varint count, then that
//! many zigzag varint indexes; a single `0` stands for `[0]`, the first
//! message.

use std::fmt;

/// Which schema an event names: by id or by GUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SchemaRef {
    /// The registry's numeric id (magic byte 0).
    Id(u32),
    /// The registry's GUID, as 32 lowercase hex digits (magic byte 1).
    Guid(String),
}

impl fmt::Display for SchemaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaRef::Id(id) => write!(f, "schema id {id}"),
            SchemaRef::Guid(guid) => write!(f, "schema GUID {guid}"),
        }
    }
}

/// Where the schema reference came from, for headers and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// The payload's prefix.
    Prefix,
    /// A `__key_schema_id` / `__value_schema_id` header.
    Header,
}

/// A framed field split into its schema reference and what follows it.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The schema the payload was written with.
    pub schema: SchemaRef,
    /// Where that was read from.
    pub carrier: Carrier,
    /// What a header held after the reference: a Protobuf frame's
    /// message indexes, which then precede `rest` (empty otherwise).
    pub header_tail: &'a [u8],
    /// The bytes after the reference: the message indexes (Protobuf only,
    /// when not in the header) and the encoded datum.
    pub rest: &'a [u8],
}

impl Frame<'_> {
    /// The message indexes (if any) and the datum, as one run of bytes,
    /// wherever the framing put the indexes.
    pub fn datum(&self) -> std::borrow::Cow<'_, [u8]> {
        if self.header_tail.is_empty() {
            std::borrow::Cow::Borrowed(self.rest)
        } else {
            std::borrow::Cow::Owned([self.header_tail, self.rest].concat())
        }
    }
}

/// Why a field is not a frame. The message names the cause.
#[derive(Debug, PartialEq, Eq)]
pub struct FrameError(pub String);

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits `payload`, using `header` (the value of the field's
/// `__…_schema_id` header, if the event has one) in preference to a
/// prefix, as Confluent's deserializers do.
pub fn split<'a>(payload: &'a [u8], header: Option<&'a [u8]>) -> Result<Frame<'a>, FrameError> {
    if let Some(header) = header {
        // An id header holds the reference and, for Protobuf, the message
        // indexes, which `Frame::datum` puts in front of the payload, so
        // that every framing reaches the decoder in the same form.
        let (schema, header_tail) = reference(header, "the schema id header")?;
        return Ok(Frame {
            schema,
            carrier: Carrier::Header,
            header_tail,
            rest: payload,
        });
    }
    let (schema, rest) = reference(payload, "the payload")?;
    Ok(Frame {
        schema,
        carrier: Carrier::Prefix,
        header_tail: &[],
        rest,
    })
}

/// Reads a magic byte and the id or GUID after it from the start of `bytes`.
fn reference<'a>(bytes: &'a [u8], what: &str) -> Result<(SchemaRef, &'a [u8]), FrameError> {
    match bytes.first() {
        None => Err(FrameError(format!(
            "{what} is empty: no magic byte, so no schema id (not Schema Registry framing)"
        ))),
        Some(0) => {
            let id = bytes.get(1..5).ok_or_else(|| {
                FrameError(format!(
                    "{what} is truncated: magic byte 0 needs a 4-byte schema id after it, and \
                     only {} bytes follow",
                    bytes.len() - 1
                ))
            })?;
            let id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
            Ok((SchemaRef::Id(id), &bytes[5..]))
        }
        Some(1) => {
            let guid = bytes.get(1..17).ok_or_else(|| {
                FrameError(format!(
                    "{what} is truncated: magic byte 1 needs a 16-byte schema GUID after it, \
                     and only {} bytes follow",
                    bytes.len() - 1
                ))
            })?;
            let hex: String = guid.iter().map(|b| format!("{b:02x}")).collect();
            Ok((SchemaRef::Guid(hex), &bytes[17..]))
        }
        Some(other) => Err(FrameError(format!(
            "{what} starts with byte 0x{other:02x}, not a Schema Registry magic byte (0: schema \
             id, 1: schema GUID); the event was not written by a Schema Registry serializer"
        ))),
    }
}

/// Reads a Protobuf frame's message indexes from the start of `bytes`:
/// the path of the message type in its file. Returns them and the datum.
pub fn message_indexes(bytes: &[u8]) -> Result<(Vec<i64>, &[u8]), FrameError> {
    let mut rest = bytes;
    let count = zigzag(&mut rest)?;
    if count == 0 {
        return Ok((vec![0], rest));
    }
    if !(0..=64).contains(&count) {
        return Err(FrameError(format!(
            "the Protobuf message index count is {count}; expected 0 to 64"
        )));
    }
    let mut indexes = Vec::with_capacity(count as usize);
    for _ in 0..count {
        indexes.push(zigzag(&mut rest)?);
    }
    Ok((indexes, rest))
}

/// Where an encoder puts the schema reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Magic byte 0 and the 4-byte id in front of the payload.
    Id,
    /// Magic byte 1 and the 16-byte GUID in front of the payload.
    Guid,
    /// Magic byte 1 and the GUID in the `__…_schema_id` header; the payload
    /// bare (as Confluent's header serializer writes it).
    Header,
}

/// A framed field: the new field and, for [`Framing::Header`], the id
/// header's value.
#[derive(Debug, PartialEq, Eq)]
pub struct Framed {
    /// The field's new bytes.
    pub field: Vec<u8>,
    /// The `__…_schema_id` header's value, if the framing uses one.
    pub header: Option<Vec<u8>>,
}

/// Frames `payload`, written with the schema of `id` and `guid` (32 hex
/// digits), by `framing`; `indexes` are a Protobuf frame's message indexes.
pub fn frame(
    framing: Framing,
    id: Option<u32>,
    guid: Option<&str>,
    indexes: Option<&[i64]>,
    payload: &[u8],
) -> Result<Framed, FrameError> {
    let mut reference = Vec::with_capacity(21);
    match framing {
        Framing::Id => {
            let id = id.ok_or_else(|| FrameError("the registry gave the schema no id".into()))?;
            reference.push(0);
            reference.extend_from_slice(&id.to_be_bytes());
        }
        Framing::Guid | Framing::Header => {
            let guid = guid.ok_or_else(|| {
                FrameError("the registry gave the schema no GUID, which this framing needs".into())
            })?;
            reference.push(1);
            for i in (0..32).step_by(2) {
                let byte = guid
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| FrameError(format!("`{guid}` is not a schema GUID")))?;
                reference.push(byte);
            }
        }
    }
    if let Some(indexes) = indexes {
        if indexes == [0] {
            reference.push(0);
        } else {
            write_zigzag(&mut reference, indexes.len() as i64);
            for &i in indexes {
                write_zigzag(&mut reference, i);
            }
        }
    }
    Ok(match framing {
        Framing::Header => Framed {
            field: payload.to_vec(),
            header: Some(reference),
        },
        _ => {
            reference.extend_from_slice(payload);
            Framed {
                field: reference,
                header: None,
            }
        }
    })
}

/// Appends `v` as a zigzag varint: Avro's int and long, and a Protobuf
/// frame's message indexes.
pub(crate) fn write_zigzag(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// One zigzag-encoded varint, as Protobuf frames carry them.
fn zigzag(bytes: &mut &[u8]) -> Result<i64, FrameError> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes
            .split_first()
            .ok_or_else(|| FrameError("the Protobuf message indexes are truncated".to_owned()))?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    Err(FrameError(
        "a Protobuf message index is longer than 10 bytes".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_framings() {
        let f = split(&[0, 0, 0, 1, 2, 9, 9], None).unwrap();
        assert_eq!(f.schema, SchemaRef::Id(258));
        assert_eq!((f.carrier, f.rest), (Carrier::Prefix, &[9u8, 9][..]));

        let mut guid = vec![1u8];
        guid.extend(0u8..16);
        guid.push(7);
        let f = split(&guid, None).unwrap();
        assert_eq!(
            f.schema,
            SchemaRef::Guid("000102030405060708090a0b0c0d0e0f".into())
        );
        assert_eq!(f.rest, &[7]);

        let f = split(b"plain", Some(&[0, 0, 0, 0, 5])).unwrap();
        assert_eq!(
            (&f.schema, f.carrier, &*f.datum()),
            (&SchemaRef::Id(5), Carrier::Header, &b"plain"[..])
        );
        // A Protobuf header's message indexes go in front of the payload.
        let f = split(b"msg", Some(&[0, 0, 0, 0, 5, 2, 2])).unwrap();
        assert_eq!(&*f.datum(), &[2, 2, b'm', b's', b'g']);
    }

    #[test]
    fn names_the_cause_of_a_bad_frame() {
        let e = split(b"{\"a\":1}", None).unwrap_err().0;
        assert!(e.contains("0x7b") && e.contains("magic byte"), "{e}");
        let e = split(&[0, 0, 1], None).unwrap_err().0;
        assert!(e.contains("truncated") && e.contains("only 2 bytes"), "{e}");
        let e = split(&[], None).unwrap_err().0;
        assert!(e.contains("empty"), "{e}");
        let e = split(b"x", Some(&[1, 2])).unwrap_err().0;
        assert!(e.contains("header is truncated"), "{e}");
    }

    #[test]
    fn frames_what_split_reads() {
        let guid = "000102030405060708090a0b0c0d0e0f";
        for framing in [Framing::Id, Framing::Guid, Framing::Header] {
            for indexes in [None, Some(&[0][..]), Some(&[1, 2][..])] {
                let f = frame(framing, Some(7), Some(guid), indexes, b"data").unwrap();
                let back = split(&f.field, f.header.as_deref()).unwrap();
                let want = if framing == Framing::Id {
                    SchemaRef::Id(7)
                } else {
                    SchemaRef::Guid(guid.into())
                };
                assert_eq!(back.schema, want);
                let datum = back.datum();
                match indexes {
                    None => assert_eq!(&*datum, b"data"),
                    Some(i) => {
                        assert_eq!(message_indexes(&datum).unwrap(), (i.to_vec(), &b"data"[..]))
                    }
                }
            }
        }
        assert!(frame(Framing::Guid, Some(1), None, None, b"").is_err());
    }

    #[test]
    fn reads_protobuf_message_indexes() {
        assert_eq!(message_indexes(&[0, 8]).unwrap(), (vec![0], &[8u8][..]));
        // Two indexes, 1 and 2 (zigzag 2 and 4), then the datum.
        assert_eq!(
            message_indexes(&[4, 2, 4, 8]).unwrap(),
            (vec![1, 2], &[8u8][..])
        );
        assert!(message_indexes(&[4, 2]).is_err());
    }
}
