// A header filter, in C: drops every event whose header `header` has the
// value `value` (both required config keys) and keeps the rest unchanged.
// An event without the header is kept.

#include "interceptor.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef exports_flumen_pipeline_interception_verdict_t verdict_t;

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
    exports_flumen_pipeline_interception_list_event_t *batch,
    exports_flumen_pipeline_interception_list_verdict_t *ret, interceptor_string_t *err) {
  (void)err;
  ret->len = batch->len;
  ret->ptr = calloc(batch->len ? batch->len : 1, sizeof(verdict_t));
  if (!ret->ptr) abort();
  for (size_t i = 0; i < batch->len; i++) {
    const flumen_pipeline_types_event_t *e = &batch->ptr[i];
    bool drop = false;
    for (size_t j = 0; j < e->headers.len && !drop; j++) {
      const flumen_pipeline_types_header_t *h = &e->headers.ptr[j];
      drop = same(h->name.ptr, h->name.len, header.ptr, header.len) &&
             same(h->value.ptr, h->value.len, value.ptr, value.len);
    }
    ret->ptr[i].action.tag = drop ? EXPORTS_FLUMEN_PIPELINE_INTERCEPTION_ACTION_DROP
                                  : EXPORTS_FLUMEN_PIPELINE_INTERCEPTION_ACTION_KEEP;
    ret->ptr[i].route.is_some = false;
  }
  exports_flumen_pipeline_interception_source_free(source);
  exports_flumen_pipeline_interception_list_event_free(batch);
  return true;
}
