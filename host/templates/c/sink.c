// {{name}}: a flumen sink. It appends one line per event, `offset<TAB>value`,
// to a file per partition: config key `path` (default
// `/out/{{name}}-%{partition}.txt`), whose directory the pipeline grants with
// `dirs = [{ host = "...", guest = "/out" }]`.
//
// Ownership follows wit-bindgen's C bindings: the arguments are the
// guest's to free, the result is handed to the host.

#include "sink.h"
#include "flumen_guest.h"  // reads the batch's columns event by event
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *path_template = "/out/{{name}}-%{partition}.txt";

bool exports_flumen_pipeline_delivery_init(exports_flumen_pipeline_delivery_config_t *config,
                                           sink_string_t *err) {
  static char message[256];
  bool ok = true;
  for (size_t i = 0; i < config->len && ok; i++) {
    sink_string_t *k = &config->ptr[i].f0, *v = &config->ptr[i].f1;
    if (k->len == 4 && !memcmp(k->ptr, "path", 4)) {
      path_template = calloc(v->len + 1, 1);
      if (!path_template) abort();
      memcpy(path_template, v->ptr, v->len);
    } else {
      snprintf(message, sizeof message, "unknown config key `%.*s`; expected path", (int)k->len,
               (const char *)k->ptr);
      sink_string_dup(err, message);
      ok = false;
    }
  }
  exports_flumen_pipeline_delivery_config_free(config);
  return ok;
}

// The template with `%{partition}` replaced.
static char *path_for(int32_t partition) {
  const char *at = strstr(path_template, "%{partition}");
  char *out = malloc(strlen(path_template) + 16);
  if (!out) abort();
  if (!at) return strcpy(out, path_template);
  sprintf(out, "%.*s%" PRId32 "%s", (int)(at - path_template), path_template, partition,
          at + strlen("%{partition}"));
  return out;
}

bool exports_flumen_pipeline_delivery_deliver(exports_flumen_pipeline_delivery_source_t *source,
                                              exports_flumen_pipeline_delivery_columns_t *batch,
                                              exports_flumen_pipeline_delivery_list_failure_t *ret,
                                              sink_string_t *err) {
  static char message[512];
  const char *bad = flumen_batch_check(batch);
  if (bad) {
    sink_string_dup(err, bad);
    exports_flumen_pipeline_delivery_source_free(source);
    exports_flumen_pipeline_delivery_columns_free(batch);
    return false;
  }
  size_t n = flumen_batch_len(batch);
  char *path = path_for(source->partition);
  FILE *f = fopen(path, "a");
  bool ok = f != NULL;
  for (size_t i = 0; ok && i < n; i++) {
    flumen_event_t e = flumen_batch_event(batch, i);
    ok = fprintf(f, "%" PRId64 "\t", e.offset) > 0 &&
         fwrite(e.value.ptr, 1, e.value.len, f) == e.value.len && fputc('\n', f) != EOF;
  }
  // Delivered means written: an error fails the whole call, and flumen
  // retries it (nothing is committed before).
  if (f && fclose(f)) ok = false;
  if (ok) {
    // The events not delivered: none, every line is written.
    *ret = (exports_flumen_pipeline_delivery_list_failure_t){0};
  } else {
    snprintf(message, sizeof message, "cannot append %zu events to %s", n, path);
    sink_string_dup(err, message);
  }
  free(path);
  exports_flumen_pipeline_delivery_source_free(source);
  exports_flumen_pipeline_delivery_columns_free(batch);
  return ok;
}
