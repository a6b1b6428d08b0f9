// The file sink, in C: appends each event as one JSON line to a file per
// partition, in the same format as the Rust `file_sink`.
//
// Config keys:
// - `path` (required): the file as the guest sees it, with `%{partition}`
//   and optionally `%{topic}` filled in per batch. Its directory must be
//   granted read-write with `dirs` in the host config.
// - `sync` (default `true`): fsync before reporting a batch delivered.
// - `label` (optional): added to every line as "label".
//
// It reads the batch's columns through guests/helpers/c/flumen_guest.h.
// The guest owns what the host passes in and frees it; what it returns is
// freed by the generated post-return function.

#include "sink.h"
#include "flumen_guest.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static char *template_path;
static char *label;
static bool sync_data = true;
static FILE *file;
static char *open_path;

// A growable byte buffer for one batch's lines.
typedef struct {
  char *ptr;
  size_t len, cap;
} buf_t;

static void put(buf_t *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    b->ptr = realloc(b->ptr, cap);
    if (!b->ptr) abort();
    b->cap = cap;
  }
  memcpy(b->ptr + b->len, data, n);
  b->len += n;
}

static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

// Whether `s` is valid UTF-8 by the same rules as Rust's `str::from_utf8`
// (no overlong forms, no surrogates, nothing past U+10FFFF), so that this
// sink chooses text or base64 exactly as the Rust sink does.
static bool is_utf8(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t k;
    uint32_t cp;
    if (c < 0x80) { i++; continue; }
    else if (c >= 0xc2 && c <= 0xdf) { k = 1; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { k = 2; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { k = 3; cp = c & 0x07; }
    else return false;
    if (i + k >= n) return false;  // truncated sequence
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i + j] & 0x3f);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += k + 1;
  }
  return true;
}

static void put_json_string(buf_t *b, const uint8_t *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  put(b, "\"", 1);
  // Runs of bytes that need no escape are copied at once: most text is one
  // run, and a byte-by-byte append made this sink several times slower.
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    put(b, s + run, i - run);
    run = i + 1;
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(b, e, 2);
    } else if (c == '\n') {
      puts_(b, "\\n");
    } else if (c == '\t') {
      puts_(b, "\\t");
    } else if (c == '\r') {
      puts_(b, "\\r");
    } else {
      char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      put(b, e, 6);
    }
  }
  put(b, s + run, n - run);
  put(b, "\"", 1);
}

static void put_base64(buf_t *b, const uint8_t *s, size_t n) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16;
    if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
    if (i + 2 < n) v |= s[i + 2];
    char o[4] = {t[(v >> 18) & 63], t[(v >> 12) & 63], i + 1 < n ? t[(v >> 6) & 63] : '=',
                 i + 2 < n ? t[v & 63] : '='};
    put(b, o, 4);
  }
  put(b, "\"", 1);
}

// `"field":"text"`, or `"field_base64":"…"` for bytes that are not UTF-8,
// or `"field":null`; preceded by a comma.
static void put_bytes(buf_t *b, const char *field, bool some, flumen_bytes_t v) {
  puts_(b, ",\"");
  puts_(b, field);
  if (!some) {
    puts_(b, "\":null");
  } else if (is_utf8(v.ptr, v.len)) {
    puts_(b, "\":");
    put_json_string(b, v.ptr, v.len);
  } else {
    puts_(b, "_base64\":");
    put_base64(b, v.ptr, v.len);
  }
}

static void put_line(buf_t *b, const flumen_pipeline_types_source_t *src,
                     const flumen_pipeline_types_columns_t *batch, size_t i) {
  flumen_event_t e = flumen_batch_event(batch, i);
  char num[32];
  put(b, "{", 1);
  if (label) {
    puts_(b, "\"label\":");
    put_json_string(b, (const uint8_t *)label, strlen(label));
    put(b, ",", 1);
  }
  puts_(b, "\"topic\":");
  put_json_string(b, src->topic.ptr, src->topic.len);
  snprintf(num, sizeof num, ",\"partition\":%d", (int)src->partition);
  puts_(b, num);
  snprintf(num, sizeof num, ",\"offset\":%lld", (long long)e.offset);
  puts_(b, num);
  if (e.has_timestamp) {
    snprintf(num, sizeof num, ",\"timestamp\":%lld", (long long)e.timestamp);
    puts_(b, num);
  } else {
    puts_(b, ",\"timestamp\":null");
  }
  put_bytes(b, "key", e.has_key, e.key);
  put_bytes(b, "value", e.has_value, e.value);
  puts_(b, ",\"headers\":[");
  for (size_t h = e.first_header; h < e.end_header; h++) {
    flumen_header_t hd = flumen_batch_header(batch, h);
    puts_(b, h > e.first_header ? ",{\"name\":" : "{\"name\":");
    put_json_string(b, hd.name.ptr, hd.name.len);
    put_bytes(b, "value", true, hd.value);
    put(b, "}", 1);
  }
  puts_(b, "]}\n");
}

static char *cstr(const sink_string_t *s) {
  char *c = malloc(s->len + 1);
  if (!c) abort();
  memcpy(c, s->ptr, s->len);
  c[s->len] = 0;
  return c;
}

static bool fail(sink_string_t *err, const char *message) {
  sink_string_dup(err, message);
  return false;
}

// `template` with every `%{key}` replaced by `value`.
static char *replace(const char *template, const char *key, const char *value) {
  size_t kl = strlen(key), vl = strlen(value), n = 0;
  for (const char *p = strstr(template, key); p; p = strstr(p + kl, key)) n++;
  char *out = malloc(strlen(template) + n * vl + 1), *o = out;
  if (!out) abort();
  const char *p = template, *q;
  while ((q = strstr(p, key))) {
    memcpy(o, p, q - p);
    o += q - p;
    memcpy(o, value, vl);
    o += vl;
    p = q + kl;
  }
  strcpy(o, p);
  return out;
}

bool exports_flumen_pipeline_delivery_init(exports_flumen_pipeline_delivery_config_t *config,
                                           sink_string_t *err) {
  static char message[512];
  bool ok = true;
  for (size_t i = 0; i < config->len && ok; i++) {
    char *key = cstr(&config->ptr[i].f0), *value = cstr(&config->ptr[i].f1);
    if (!strcmp(key, "path")) {
      template_path = value;
      value = NULL;
    } else if (!strcmp(key, "label")) {
      label = value;
      value = NULL;
    } else if (!strcmp(key, "sync")) {
      if (strcmp(value, "true") && strcmp(value, "false")) {
        snprintf(message, sizeof message, "config key `sync` must be true or false, got `%s`", value);
        ok = fail(err, message);
      }
      sync_data = !strcmp(value, "true");
    } else {
      snprintf(message, sizeof message,
               "unknown config key `%s`; expected one of: path, sync, label", key);
      ok = fail(err, message);
    }
    free(key);
    free(value);
  }
  exports_flumen_pipeline_delivery_config_free(config);
  if (!ok) return false;
  if (!template_path) return fail(err, "missing required config key `path`");
  if (!strstr(template_path, "%{partition}")) {
    snprintf(message, sizeof message,
             "config key `path` must contain `%%{partition}` (got `%s`): each partition has its "
             "own sink instance, and instances sharing one file would interleave their lines",
             template_path);
    return fail(err, message);
  }
  // Like the Rust and Python sinks: a directory that is not granted is an
  // error at start-up, not a failed write on the first batch. (A directory
  // with an escape in it is only known per batch.)
  const char *slash = strrchr(template_path, '/');
  if (slash) {
    size_t n = slash == template_path ? 1 : (size_t)(slash - template_path);
    char *dir = strndup(template_path, n);
    if (!dir) abort();
    struct stat st;
    bool visible = strstr(dir, "%{") || (stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    if (!visible) {
      snprintf(message, sizeof message,
               "directory `%s` of `path` is not visible to this component: grant it "
               "read-write with `dirs` in the host config",
               dir);
    }
    free(dir);
    if (!visible) return fail(err, message);
  }
  return true;
}

bool exports_flumen_pipeline_delivery_deliver(exports_flumen_pipeline_delivery_source_t *source,
                                              exports_flumen_pipeline_delivery_columns_t *batch,
                                              exports_flumen_pipeline_delivery_list_failure_t *ret,
                                              sink_string_t *err) {
  static char message[512];
  const char *bad = flumen_batch_check(batch);
  if (bad) {
    exports_flumen_pipeline_delivery_source_free(source);
    exports_flumen_pipeline_delivery_columns_free(batch);
    return fail(err, bad);
  }
  bool ok = true;
  size_t n = flumen_batch_len(batch);
  buf_t b = {0};
  for (size_t i = 0; i < n; i++) put_line(&b, source, batch, i);
  char *topic = cstr(&source->topic), partition[16];
  snprintf(partition, sizeof partition, "%d", (int)source->partition);
  char *with_topic = replace(template_path, "%{topic}", topic);
  char *path = replace(with_topic, "%{partition}", partition);
  free(with_topic);
  free(topic);
  if (!file || strcmp(open_path, path)) {
    if (file) fclose(file);
    free(open_path);
    open_path = path;
    file = fopen(path, "a");
  } else {
    free(path);
  }
  if (!file || fwrite(b.ptr, 1, b.len, file) != b.len || fflush(file) ||
      (sync_data && fsync(fileno(file)))) {
    snprintf(message, sizeof message, "writing %zu events to %s failed", n, open_path);
    if (file) fclose(file);
    file = NULL;
    ok = fail(err, message);
  }
  // The events not delivered: none, or the call failed as a whole.
  if (ok) *ret = (exports_flumen_pipeline_delivery_list_failure_t){0};
  free(b.ptr);
  exports_flumen_pipeline_delivery_source_free(source);
  exports_flumen_pipeline_delivery_columns_free(batch);
  return ok;
}
