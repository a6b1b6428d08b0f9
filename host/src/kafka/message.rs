//! Reading a Kafka message into the batch the guests see.

use super::fetch_queue::Lent;
use crate::contract::{Batch, Record, TooLarge};

/// Copies a message out of librdkafka's buffer onto the end of `batch`: its
/// key, value and headers go straight into the batch's columns, with no
/// allocation of their own. Its topic and partition are the worker's,
/// passed once per batch.
pub fn push_message(batch: &mut Batch, msg: Lent<'_>) -> Result<(), TooLarge> {
    batch.push(Record {
        offset: msg.offset(),
        timestamp: msg.timestamp(),
        key: msg.key(),
        value: msg.value(),
        headers: headers_of(msg),
    })
}

/// The message's headers as (name, value), read through librdkafka's C API.
///
/// rdkafka 0.39's own header iterator unwraps the UTF-8 conversion of each
/// header name (`BorrowedHeaders::try_get`), so a record whose producer put
/// bytes that are not UTF-8 in a header name would panic the consumer
/// thread. Here names are bytes; [`Batch::push`] converts a bad one lossily.
fn headers_of<'a>(msg: Lent<'a>) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    use rdkafka::bindings as rd;
    use rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR as OK;
    let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `msg.ptr()` is the message librdkafka lent for `'a`; the
    // headers it returns belong to that message and are only read within
    // `'a`.
    let found = unsafe { rd::rd_kafka_message_headers(msg.ptr(), &mut hdrs) } == OK;
    let count = if found && !hdrs.is_null() {
        // SAFETY: `hdrs` is valid (above).
        unsafe { rd::rd_kafka_header_cnt(hdrs) }
    } else {
        0
    };
    (0..count).filter_map(move |i| {
        let mut name: *const std::os::raw::c_char = std::ptr::null();
        let mut value: *const std::os::raw::c_void = std::ptr::null();
        let mut size = 0usize;
        // SAFETY: `i < count`, so `hdrs` is valid; the out-pointers are
        // valid locals.
        let err = unsafe { rd::rd_kafka_header_get_all(hdrs, i, &mut name, &mut value, &mut size) };
        if err != OK || name.is_null() {
            return None;
        }
        // SAFETY: librdkafka stores header names NUL-terminated, and a
        // non-null value points at `size` bytes, both owned by `hdrs`,
        // which lives as long as the message.
        let (name, value): (&'a [u8], &'a [u8]) = unsafe {
            (
                std::ffi::CStr::from_ptr(name).to_bytes(),
                if value.is_null() {
                    &[]
                } else {
                    std::slice::from_raw_parts(value.cast::<u8>(), size)
                },
            )
        };
        Some((name, value))
    })
}
