//! Reading a Kafka message into the event the guests see.

use crate::contract::{Event, Header};
use rdkafka::message::{BorrowedMessage, Message};

/// Copies a message out of librdkafka's buffer into the event the guests see.
/// Its topic and partition are the worker's, passed once per batch.
pub fn to_event(msg: &BorrowedMessage<'_>) -> Event {
    Event {
        offset: msg.offset(),
        timestamp: msg.timestamp().to_millis(),
        key: msg.key().map(<[u8]>::to_vec),
        value: msg.payload().map(<[u8]>::to_vec),
        headers: headers_of(msg),
    }
}

/// The message's headers, read through librdkafka's C API.
///
/// rdkafka 0.39's own header iterator unwraps the UTF-8 conversion of each
/// header name (`BorrowedHeaders::try_get`), so a record whose producer put
/// bytes that are not UTF-8 in a header name would panic the consumer
/// thread. Kafka specifies header names as UTF-8 strings and the WIT
/// `header.name` is a string, so such a name is converted lossily (U+FFFD
/// for each bad sequence); values are kept byte for byte.
fn headers_of(msg: &BorrowedMessage<'_>) -> Vec<Header> {
    use rdkafka::bindings as rd;
    use rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR as OK;
    let mut hdrs: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `msg.ptr()` is the message librdkafka lent for `msg`'s
    // lifetime; the headers it returns belong to that message and are only
    // read before this function returns.
    if unsafe { rd::rd_kafka_message_headers(msg.ptr(), &mut hdrs) } != OK || hdrs.is_null() {
        return Vec::new();
    }
    // SAFETY: `hdrs` is valid (above).
    let count = unsafe { rd::rd_kafka_header_cnt(hdrs) };
    (0..count)
        .filter_map(|i| {
            let mut name: *const std::os::raw::c_char = std::ptr::null();
            let mut value: *const std::os::raw::c_void = std::ptr::null();
            let mut size = 0usize;
            // SAFETY: `i < count`; the out-pointers are valid locals.
            let err =
                unsafe { rd::rd_kafka_header_get_all(hdrs, i, &mut name, &mut value, &mut size) };
            if err != OK || name.is_null() {
                return None;
            }
            // SAFETY: librdkafka stores header names NUL-terminated, and a
            // non-null value points at `size` bytes, both owned by `hdrs`.
            let (name, value) = unsafe {
                (
                    std::ffi::CStr::from_ptr(name)
                        .to_string_lossy()
                        .into_owned(),
                    if value.is_null() {
                        Vec::new()
                    } else {
                        std::slice::from_raw_parts(value.cast::<u8>(), size).to_vec()
                    },
                )
            };
            Some(Header { name, value })
        })
        .collect()
}
