//! A record batch written byte by byte, for data no real producer would
//! write: a batch that claims a codec but holds bytes that do not
//! decompress. It is sent as a plain Produce request (v3), which the mock
//! cluster stores as it is, so that a consumer meets it as it would meet a
//! corrupt batch on a real broker.

use std::io::{Read, Write};
use std::net::TcpStream;

/// Appends one record batch to `topic`'s `partition` on the broker at
/// `bootstrap` (its leader): `records` records whose compressed body is
/// `body`, with the codec bits of `attributes` (4 = zstd).
pub fn produce_raw_batch(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    attributes: i16,
    records: i32,
    body: &[u8],
) {
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes()); // base offset
    let length_at = batch.len();
    batch.extend_from_slice(&0i32.to_be_bytes()); // batch length, below
    batch.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&0u32.to_be_bytes()); // CRC; clients check it only with check.crcs
    batch.extend_from_slice(&attributes.to_be_bytes());
    batch.extend_from_slice(&(records - 1).to_be_bytes()); // last offset delta
    batch.extend_from_slice(&0i64.to_be_bytes()); // first timestamp
    batch.extend_from_slice(&0i64.to_be_bytes()); // max timestamp
    batch.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    batch.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    batch.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    batch.extend_from_slice(&records.to_be_bytes());
    batch.extend_from_slice(body);
    let length = (batch.len() - 12) as i32;
    batch[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());

    let mut request = Vec::new();
    request.extend_from_slice(&0i16.to_be_bytes()); // Produce
    request.extend_from_slice(&3i16.to_be_bytes()); // v3
    request.extend_from_slice(&1i32.to_be_bytes()); // correlation id
    put_string(&mut request, "flumen-test");
    request.extend_from_slice(&(-1i16).to_be_bytes()); // no transactional id
    request.extend_from_slice(&1i16.to_be_bytes()); // acks
    request.extend_from_slice(&5000i32.to_be_bytes()); // timeout
    request.extend_from_slice(&1i32.to_be_bytes()); // one topic
    put_string(&mut request, topic);
    request.extend_from_slice(&1i32.to_be_bytes()); // one partition
    request.extend_from_slice(&partition.to_be_bytes());
    request.extend_from_slice(&(batch.len() as i32).to_be_bytes());
    request.extend_from_slice(&batch);

    let mut stream = TcpStream::connect(bootstrap).expect("connect to the broker");
    stream
        .write_all(&(request.len() as i32).to_be_bytes())
        .and_then(|()| stream.write_all(&request))
        .expect("send Produce");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("Produce response");
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut response).expect("Produce response");
    // correlation id, topics (1), name, partitions (1), index, error code.
    let at = 4 + 4 + 2 + topic.len() + 4 + 4;
    let error = i16::from_be_bytes([response[at], response[at + 1]]);
    assert_eq!(error, 0, "the broker refused the raw batch (error {error})");
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}
