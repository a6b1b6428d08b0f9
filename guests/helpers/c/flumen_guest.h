// flumen_guest.h: reads a flumen batch (contract flumen:pipeline@0.4,
// `types.columns`) event by event, without copying, and names the bytes of
// an interceptor's answer. Header-only.
//
// A batch crosses into the guest as a dozen flat lists: every event's
// offset, timestamp and presence bits, all keys back to back with where
// each ends, all values the same way, and the headers likewise. That is
// several times cheaper than one record per event, and this header gives
// back the event-by-event view:
//
//   #include "sink.h"            // the world's generated header, first
//   #include "flumen_guest.h"
//
//   const char *bad = flumen_batch_check(batch);
//   if (bad) { sink_string_dup(err, bad); return false; }
//   for (size_t i = 0; i < flumen_batch_len(batch); i++) {
//     flumen_event_t e = flumen_batch_event(batch, i);
//     if (e.has_value) use(e.value.ptr, e.value.len);
//     for (size_t h = e.first_header; h < e.end_header; h++) {
//       flumen_header_t hd = flumen_batch_header(batch, h);
//       ...
//     }
//   }
//
// Check the batch once with flumen_batch_check; the accessors then read
// within bounds without checking again. The pointers stay valid until the
// batch is freed (`..._columns_free`).
//
// A sink answers with the events it did not deliver (`ret->len = 0`: all
// delivered); an interceptor with one action byte per event in
// `ret->actions` (FLUMEN_KEEP, FLUMEN_DROP, FLUMEN_REPLACE), or none to keep
// every event.

#ifndef FLUMEN_GUEST_H
#define FLUMEN_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// `presence` bits of an event.
enum {
  FLUMEN_HAS_KEY = 1,        // the event has a key
  FLUMEN_HAS_VALUE = 2,      // it has a value (clear: a tombstone)
  FLUMEN_HAS_TIMESTAMP = 4,  // the broker supplied a timestamp
};

// Action bytes of an interceptor's answer (`verdicts.actions`).
enum {
  FLUMEN_KEEP = 0,     // keep the event as it is
  FLUMEN_DROP = 1,     // drop it: it reaches no sink and may be committed
  FLUMEN_REPLACE = 2,  // replace it with the next of `replacements`
};

// Bytes borrowed from the batch.
typedef struct {
  const uint8_t *ptr;
  size_t len;
} flumen_bytes_t;

// One event, borrowed from the batch. An absent key or value is empty with
// its `has_` flag clear.
typedef struct {
  int64_t offset;
  bool has_timestamp;
  int64_t timestamp;  // milliseconds since the Unix epoch
  bool has_key;
  flumen_bytes_t key;
  bool has_value;
  flumen_bytes_t value;
  // Its headers are indexes first_header .. end_header - 1 of
  // flumen_batch_header, in the order the producer wrote them.
  size_t first_header, end_header;
} flumen_event_t;

// One header: a UTF-8 name and a value (Kafka's null value is empty).
typedef struct {
  flumen_bytes_t name, value;
} flumen_header_t;

// Where entry `i` of `ends` starts: the previous entry's end, or 0.
static inline size_t flumen__start(const uint32_t *ends, size_t i) {
  return i ? ends[i - 1] : 0;
}

// Whether `ends` are `count` non-decreasing positions within `len`.
static inline bool flumen__ends_ok(const uint32_t *ends, size_t n, size_t count, size_t len) {
  if (n != count) return false;
  uint32_t last = 0;
  for (size_t i = 0; i < n; i++) {
    if (ends[i] < last || ends[i] > len) return false;
    last = ends[i];
  }
  return true;
}

// NULL if `c` is a well-formed batch (every list has the length the
// contract says, every end lies within its buffer and none goes
// backwards), or a message naming what is wrong, to return as the call's
// error. The host never sends a malformed batch; checking costs one pass
// over the ends and keeps a guest safe if it ever did.
static inline const char *flumen_batch_check(const flumen_pipeline_types_columns_t *c) {
  size_t n = c->offsets.len, headers = c->header_name_ends.len;
  if (c->timestamps.len != n || c->presence.len != n)
    return "malformed batch: timestamps or presence do not have one entry per event";
  if (!flumen__ends_ok(c->key_ends.ptr, c->key_ends.len, n, c->keys.len))
    return "malformed batch: key-ends";
  if (!flumen__ends_ok(c->value_ends.ptr, c->value_ends.len, n, c->values.len))
    return "malformed batch: value-ends";
  if (!flumen__ends_ok(c->header_ends.ptr, c->header_ends.len, n, headers))
    return "malformed batch: header-ends";
  if (!flumen__ends_ok(c->header_name_ends.ptr, c->header_name_ends.len, headers,
                       c->header_names.len))
    return "malformed batch: header-name-ends";
  if (!flumen__ends_ok(c->header_value_ends.ptr, c->header_value_ends.len, headers,
                       c->header_values.len))
    return "malformed batch: header-value-ends";
  return NULL;
}

// Number of events in the batch.
static inline size_t flumen_batch_len(const flumen_pipeline_types_columns_t *c) {
  return c->offsets.len;
}

// Event `i` (below flumen_batch_len) of a checked batch.
static inline flumen_event_t flumen_batch_event(const flumen_pipeline_types_columns_t *c,
                                                size_t i) {
  flumen_event_t e;
  uint8_t presence = c->presence.ptr[i];
  size_t k = flumen__start(c->key_ends.ptr, i), v = flumen__start(c->value_ends.ptr, i);
  e.offset = c->offsets.ptr[i];
  e.has_timestamp = presence & FLUMEN_HAS_TIMESTAMP;
  e.timestamp = c->timestamps.ptr[i];
  e.has_key = presence & FLUMEN_HAS_KEY;
  e.key = (flumen_bytes_t){c->keys.ptr + k, c->key_ends.ptr[i] - k};
  e.has_value = presence & FLUMEN_HAS_VALUE;
  e.value = (flumen_bytes_t){c->values.ptr + v, c->value_ends.ptr[i] - v};
  e.first_header = flumen__start(c->header_ends.ptr, i);
  e.end_header = c->header_ends.ptr[i];
  return e;
}

// Header `h` (an index between an event's first_header and end_header) of a
// checked batch.
static inline flumen_header_t flumen_batch_header(const flumen_pipeline_types_columns_t *c,
                                                  size_t h) {
  size_t n = flumen__start(c->header_name_ends.ptr, h);
  size_t v = flumen__start(c->header_value_ends.ptr, h);
  return (flumen_header_t){
      {c->header_names.ptr + n, c->header_name_ends.ptr[h] - n},
      {c->header_values.ptr + v, c->header_value_ends.ptr[h] - v},
  };
}

// Whether `b` holds exactly the `len` bytes at `s`.
static inline bool flumen_bytes_eq(flumen_bytes_t b, const void *s, size_t len) {
  return b.len == len && (len == 0 || !memcmp(b.ptr, s, len));
}

// ---- Typed events: a decoded value's fields ----
//
// `schema_decode` turns an Avro, Protobuf or JSON Schema value into a JSON
// object. C has no dictionary, so this reads one top-level field of such
// an object at a time, without copying: `flumen_json_field` finds a field
// by name and gives its value's JSON text (`42`, `true`, `"paid"`, `{…}`);
// `flumen_json_string` gives a string's characters, without its quotes and
// with its escapes as written (`\"`, `\u00e9`), to compare with
// `flumen_bytes_eq`.

// The end of the JSON value starting at `p` (at most `end`), or NULL if
// it is not one. Objects and arrays are skipped whole.
static inline const uint8_t *flumen__json_skip(const uint8_t *p, const uint8_t *end) {
  if (p >= end) return NULL;
  if (*p == '"') {
    for (p++; p < end; p++) {
      if (*p == '\\') p++;
      else if (*p == '"') return p + 1;
    }
    return NULL;
  }
  if (*p == '{' || *p == '[') {
    int depth = 0;
    for (; p < end; p++) {
      if (*p == '"') {
        p = flumen__json_skip(p, end);
        if (!p) return NULL;
        p--;
      } else if (*p == '{' || *p == '[') {
        depth++;
      } else if (*p == '}' || *p == ']') {
        if (--depth == 0) return p + 1;
      }
    }
    return NULL;
  }
  while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
         *p != '\t' && *p != '\r')
    p++;
  return p;
}

static inline const uint8_t *flumen__json_space(const uint8_t *p, const uint8_t *end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
  return p;
}

// Whether the JSON text `value` is a string; its characters in `out` if so.
static inline bool flumen_json_string(flumen_bytes_t value, flumen_bytes_t *out) {
  if (value.len < 2 || value.ptr[0] != '"' || value.ptr[value.len - 1] != '"') return false;
  out->ptr = value.ptr + 1;
  out->len = value.len - 2;
  return true;
}

// Finds the top-level field `name` of the JSON object `json`; true and
// its value's JSON text in `out` if it is there.
static inline bool flumen_json_field(flumen_bytes_t json, const char *name, flumen_bytes_t *out) {
  const uint8_t *p = json.ptr, *end = json.ptr + json.len;
  size_t name_len = strlen(name);
  p = flumen__json_space(p, end);
  if (p >= end || *p != '{') return false;
  p++;
  for (;;) {
    p = flumen__json_space(p, end);
    if (p >= end || *p != '"') return false;
    const uint8_t *key = p + 1, *key_end = flumen__json_skip(p, end);
    if (!key_end) return false;
    p = flumen__json_space(key_end, end);
    if (p >= end || *p != ':') return false;
    p = flumen__json_space(p + 1, end);
    const uint8_t *value_end = flumen__json_skip(p, end);
    if (!value_end) return false;
    if ((size_t)(key_end - 1 - key) == name_len && !memcmp(key, name, name_len)) {
      out->ptr = (uint8_t *)p;
      out->len = (size_t)(value_end - p);
      return true;
    }
    p = flumen__json_space(value_end, end);
    if (p >= end || *p != ',') return false;
    p++;
  }
}

#endif
