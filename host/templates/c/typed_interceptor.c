// {{name}}: a flumen interceptor for typed events, after `schema_decode`
// (which turns Avro, Protobuf or JSON Schema into a JSON object). It drops
// every event whose field `field` (default `status`) equals `equals`
// (default `cancelled`) and keeps the rest, and any event whose value is
// not a JSON object, unchanged.
//
// Ownership follows wit-bindgen's C bindings: the arguments are the
// guest's to free, the result is handed to the host.

#include "interceptor.h"
#include "flumen_guest.h"  // reads the batch's columns event by event
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char field[256] = "status";
static char equals[256] = "cancelled";

// Copies a config value into `to`, NUL-terminated; false if it is too long.
static bool set(char *to, size_t size, const interceptor_string_t *v) {
  if (v->len >= size) return false;
  memcpy(to, v->ptr, v->len);
  to[v->len] = 0;
  return true;
}

bool exports_flumen_pipeline_interception_init(
    exports_flumen_pipeline_interception_config_t *config, interceptor_string_t *err) {
  static char message[256];
  bool ok = true;
  for (size_t i = 0; i < config->len && ok; i++) {
    interceptor_string_t *k = &config->ptr[i].f0, *v = &config->ptr[i].f1;
    bool known = false;
    if (k->len == 5 && !memcmp(k->ptr, "field", 5)) known = set(field, sizeof field, v);
    if (k->len == 6 && !memcmp(k->ptr, "equals", 6)) known = set(equals, sizeof equals, v);
    if (!known) {
      snprintf(message, sizeof message,
               "config key `%.*s` is unknown or too long; expected field or equals", (int)k->len,
               (const char *)k->ptr);
      interceptor_string_dup(err, message);
      ok = false;
    }
  }
  exports_flumen_pipeline_interception_config_free(config);
  return ok;
}

bool exports_flumen_pipeline_interception_process(
    exports_flumen_pipeline_interception_source_t *source,
    exports_flumen_pipeline_interception_columns_t *batch,
    exports_flumen_pipeline_interception_verdicts_t *ret, interceptor_string_t *err) {
  const char *bad = flumen_batch_check(batch);
  if (bad) {
    interceptor_string_dup(err, bad);
    exports_flumen_pipeline_interception_source_free(source);
    exports_flumen_pipeline_interception_columns_free(batch);
    return false;
  }
  // One action byte per event (no bytes at all would keep every event);
  // no replacements and no routes. flumen frees what `ret` points to.
  size_t n = flumen_batch_len(batch);
  *ret = (exports_flumen_pipeline_interception_verdicts_t){0};
  ret->actions.len = n;
  ret->actions.ptr = malloc(n ? n : 1);
  if (!ret->actions.ptr) abort();
  for (size_t i = 0; i < n; i++) {
    flumen_event_t e = flumen_batch_event(batch, i);
    // The decoded value's field, read in place (flumen_json_field).
    flumen_bytes_t found, text;
    bool drop = e.has_value && flumen_json_field(e.value, field, &found) &&
                flumen_json_string(found, &text) && flumen_bytes_eq(text, equals, strlen(equals));
    ret->actions.ptr[i] = drop ? FLUMEN_DROP : FLUMEN_KEEP;
  }
  exports_flumen_pipeline_interception_source_free(source);
  exports_flumen_pipeline_interception_columns_free(batch);
  return true;
}
