// {{name}}: a flumen interceptor. It drops every event whose value contains
// the config key `drop_containing` (default `DROP`) and keeps the rest
// unchanged.
//
// Ownership follows wit-bindgen's C bindings: the arguments are the
// guest's to free, the result is handed to the host.

#include "interceptor.h"
#include "flumen_guest.h"  // reads the batch's columns event by event
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *needle = (uint8_t *)"DROP";
static size_t needle_len = 4;

static bool contains(const uint8_t *hay, size_t hl, const uint8_t *n, size_t nl) {
  for (size_t i = 0; i + nl <= hl; i++)
    if (!memcmp(hay + i, n, nl)) return true;
  return false;
}

bool exports_flumen_pipeline_interception_init(
    exports_flumen_pipeline_interception_config_t *config, interceptor_string_t *err) {
  static char message[256];
  bool ok = true;
  for (size_t i = 0; i < config->len && ok; i++) {
    interceptor_string_t *k = &config->ptr[i].f0, *v = &config->ptr[i].f1;
    if (k->len == 15 && !memcmp(k->ptr, "drop_containing", 15) && v->len > 0) {
      needle = v->ptr;
      needle_len = v->len;
      *v = (interceptor_string_t){0};  // kept: not freed with the config
    } else {
      snprintf(message, sizeof message,
               "config key `%.*s` is unknown or empty; expected drop_containing", (int)k->len,
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
    bool drop = e.has_value && contains(e.value.ptr, e.value.len, needle, needle_len);
    ret->actions.ptr[i] = drop ? FLUMEN_DROP : FLUMEN_KEEP;
  }
  exports_flumen_pipeline_interception_source_free(source);
  exports_flumen_pipeline_interception_columns_free(batch);
  return true;
}
