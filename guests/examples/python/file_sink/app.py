"""The file sink, in Python: appends each event as one JSON line to a file
per partition, in the same format as the Rust `file_sink`. It reads the
batch's columns through `flumen_guest` (guests/helpers/python/).

Config keys:
- `path` (required): the file as the guest sees it, with `%{partition}` and
  optionally `%{topic}` filled in per batch, e.g. `/out/events-%{partition}.jsonl`.
  Its directory must be granted read-write with `dirs` in the host config.
- `sync` (default `true`): fsync before reporting a batch delivered.
- `label` (optional): added to every line as `"label"`.

A batch is reported delivered only after its lines are written and flushed
(and synced); a failed write fails the whole call, which the host retries.
"""

import base64
import json
import os
from itertools import chain, repeat

from componentize_py_types import Err
from flumen_guest import HAS_KEY, HAS_TIMESTAMP, HAS_VALUE, Batch
from wit_world import exports
from wit_world.imports.log import Level, log

KNOWN = ("path", "sync", "label")

# One instance serves one partition; module state lives as long as it does.
state = {}

# JSON string literals, as the Rust sink writes them (serde_json: no ASCII
# escaping, so UTF-8 text stays as it is).
_quote = json.JSONEncoder(ensure_ascii=False).encode

CONTROL = bytes(range(32))


def quote(text):
    """`text` as a JSON string literal, in UTF-8 bytes."""
    return _quote(text).encode("utf-8")


def bytes_field(field, data):
    """`,"field":"text"` for UTF-8 text, `,"field_base64":"..."` for anything
    else, so no byte is lost or mangled; `,"field":null` when absent."""
    if data is None:
        return b',"%s":null' % field
    try:
        return b',"%s":%s' % (field, quote(data.decode("utf-8")))
    except UnicodeDecodeError:
        return b',"%s_base64":"%s"' % (field, base64.b64encode(data))


def plain(buf):
    """Whether every byte of `buf` is ASCII and none is a control character.
    Then every key or value cut from it is UTF-8 text whose JSON literal
    needs only `\\` and `"` escaped, which `bytes.replace` does in C. One
    check per batch column replaces CPython's JSON encoder scanning every
    value, which was a third of this sink's time."""
    return buf.isascii() and len(buf.translate(None, CONTROL)) == len(buf)


def field_parts(field, buf, ends, presence, bit):
    """Three columns (heads, bodies, tails) whose concatenation, event by
    event, is `bytes_field(field, x)` for the key or value `x` that `ends`
    cuts from `buf` (`None` where `presence` lacks `bit`). Splitting each
    field in three lets a plain value go from `buf` to the output through
    a `memoryview`, without a copy of its own."""
    n = len(ends)
    starts = [0]
    starts += ends[:-1]
    if not plain(buf):
        texts = [
            bytes_field(field, buf[s:e] if p & bit else None)
            for s, e, p in zip(starts, ends, presence)
        ]
        return texts, repeat(b"", n), repeat(b"", n)
    if b'"' in buf or b"\\" in buf:
        bodies = [
            buf[s:e].replace(b"\\", b"\\\\").replace(b'"', b'\\"') for s, e in zip(starts, ends)
        ]
    else:
        view = memoryview(buf)
        bodies = [view[s:e] for s, e in zip(starts, ends)]
    null, head = b',"%s":null' % field, b',"%s":"' % field
    heads = [head if p & bit else null for p in presence]
    tails = [b'"' if p & bit else b"" for p in presence]
    return heads, bodies, tails


def json_lines(source, batch, label):
    """Every event of `batch` as one JSON line each, in UTF-8.

    It works a column at a time: what is the same for the whole batch is
    rendered once, each part of every line in one comprehension, and the
    parts are joined in C. Event by event, the same lines cost CPython
    over three times as long."""
    prefix = b"{"
    if label is not None:
        prefix += b'"label":%s,' % quote(label)
    prefix += b'"topic":%s,"partition":%d,"offset":' % (quote(source.topic), source.partition)
    c = batch.columns
    starts = [
        b'%s%d,"timestamp":%s' % (prefix, offset, b"%d" % t if p & HAS_TIMESTAMP else b"null")
        for offset, t, p in zip(c.offsets, c.timestamps, c.presence)
    ]
    keys = field_parts(b"key", c.keys, c.key_ends, c.presence, HAS_KEY)
    values = field_parts(b"value", c.values, c.value_ends, c.presence, HAS_VALUE)
    if c.header_name_ends:
        ends = [
            b',"headers":['
            + b",".join([b'{"name":' + quote(n) + bytes_field(b"value", v) + b"}" for n, v in hs])
            + b"]}\n"
            for hs in batch.headers()
        ]
    else:  # no event has headers, the common case
        ends = repeat(b',"headers":[]}\n', len(starts))
    return b"".join(chain.from_iterable(zip(starts, *keys, *values, ends)))


class Delivery(exports.Delivery):
    def init(self, config):
        config = dict(config)
        unknown = [k for k in config if k not in KNOWN]
        if unknown:
            raise Err(f"unknown config key `{unknown[0]}`; expected one of: {', '.join(KNOWN)}")
        path = config.get("path")
        if path is None:
            raise Err("missing required config key `path`")
        if "%{partition}" not in path:
            raise Err(
                f"config key `path` must contain `%{{partition}}` (got `{path}`): each "
                "partition has its own sink instance, and instances sharing one file would "
                "interleave their lines"
            )
        sync = config.get("sync", "true")
        if sync not in ("true", "false"):
            raise Err(f"config key `sync` must be true or false, got `{sync}`")
        directory = os.path.dirname(path) or "/"
        if "%{" not in directory and not os.path.isdir(directory):
            raise Err(
                f"directory `{directory}` of `path` is not visible to this component: grant "
                "it read-write with `dirs` in the host config"
            )
        state.update(template=path, sync=sync == "true", label=config.get("label"), file=None)
        log(Level.DEBUG, f"appending to {path} (sync={sync})")

    def deliver(self, source, batch):
        batch = Batch(batch)
        if not batch:
            return []
        path = (
            state["template"]
            .replace("%{topic}", source.topic)
            .replace("%{partition}", str(source.partition))
        )
        text = json_lines(source, batch, state["label"])
        try:
            f = state["file"]
            if f is None or f.name != path:
                f = open(path, "ab")
                state["file"] = f
            f.write(text)
            f.flush()
            if state["sync"]:
                os.fsync(f.fileno())
        except OSError as e:
            state["file"] = None
            raise Err(f"writing {len(batch)} events to {path}: {e}")
        # The events not delivered: none, every line is written.
        return []
