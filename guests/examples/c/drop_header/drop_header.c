// A header filter, in C: drops every event whose header `header` has the
// value `value` (both required config keys) and keeps the rest unchanged.
// An event without the header is kept.
//
// It reads the batch's columns through guests/helpers/c/flumen_guest.h.

#include "interceptor.h"
#include "flumen_guest.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static interceptor_string_t header, value;

static bool same(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
  return al == bl && (al == 0 || !memcmp(a, b, al));
}

bool exports_flumen_pipeline_interception_init(
    exports_flumen_pipeline_interception_config_t *config, interceptor_string_t *err) {
  static char message[512];
  bool ok = true;
  for (size_t i = 0; i < config->len && ok; i++) {
    interceptor_string_t *k = &config->ptr[i].f0, *v = &config->ptr[i].f1;
    if (same(k->ptr, k->len, (const uint8_t *)"header", 6)) {
      header = *v;
      *v = (interceptor_string_t){0};  // kept: not freed with the config
    } else if (same(k->ptr, k->len, (const uint8_t *)"value", 5)) {
      value = *v;
      *v = (interceptor_string_t){0};
    } else {
      snprintf(message, sizeof message,
               "unknown config key `%.*s`; expected one of: header, value", (int)k->len,
               (const char *)k->ptr);
      interceptor_string_dup(err, message);
      ok = false;
    }
  }
  exports_flumen_pipeline_interception_config_free(config);
  if (ok && !header.ptr) {
    interceptor_string_dup(err, "missing required config key `header`");
    ok = false;
  } else if (ok && !value.ptr) {
    interceptor_string_dup(err, "missing required config key `value`");
    ok = false;
  }
  return ok;
}

bool exports_flumen_pipeline_interception_process(
    exports_flumen_pipeline_interception_source_t *source,
    exports_flumen_pipeline_interception_columns_t *batch,
    exports_flumen_pipeline_interception_verdicts_t *ret, interceptor_string_t *err) {
  const char *bad = flumen_batch_check(batch);
  bool ok = !bad;
  if (bad) {
    interceptor_string_dup(err, bad);
  } else {
    size_t n = flumen_batch_len(batch);
    *ret = (exports_flumen_pipeline_interception_verdicts_t){0};
    ret->actions.len = n;
    ret->actions.ptr = malloc(n ? n : 1);
    if (!ret->actions.ptr) abort();
    for (size_t i = 0; i < n; i++) {
      flumen_event_t e = flumen_batch_event(batch, i);
      bool drop = false;
      for (size_t h = e.first_header; h < e.end_header && !drop; h++) {
        flumen_header_t hd = flumen_batch_header(batch, h);
        drop = flumen_bytes_eq(hd.name, header.ptr, header.len) &&
               flumen_bytes_eq(hd.value, value.ptr, value.len);
      }
      ret->actions.ptr[i] = drop ? FLUMEN_DROP : FLUMEN_KEEP;
    }
  }
  exports_flumen_pipeline_interception_source_free(source);
  exports_flumen_pipeline_interception_columns_free(batch);
  return ok;
}
