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

from componentize_py_types import Err
from flumen_guest import Batch
from wit_world import exports
from wit_world.imports.log import Level, log

KNOWN = ("path", "sync", "label")

# One instance serves one partition; module state lives as long as it does.
state = {}

# JSON string literals, as the Rust sink writes them (serde_json: no ASCII
# escaping, so UTF-8 text stays as it is).
quote = json.JSONEncoder(ensure_ascii=False).encode


def bytes_field(field, data):
    """`,"field":"text"` for UTF-8 text, `,"field_base64":"..."` for anything
    else, so no byte is lost or mangled; `,"field":null` when absent."""
    if data is None:
        return f',"{field}":null'
    try:
        return f',"{field}":{quote(data.decode("utf-8"))}'
    except UnicodeDecodeError:
        return f',"{field}_base64":"{base64.b64encode(data).decode("ascii")}"'


def json_lines(source, batch, label):
    """Every event of `batch` as one JSON line each. The fields that are
    the same for the whole batch are rendered once; each line is written
    field by field rather than through a dict, which halves the time."""
    prefix = "{"
    if label is not None:
        prefix += f'"label":{quote(label)},'
    prefix += f'"topic":{quote(source.topic)},"partition":{source.partition},"offset":'
    out = []
    for e in batch:
        ts = e.timestamp
        headers = ",".join(
            '{"name":' + quote(name) + bytes_field("value", value) + "}"
            for name, value in e.headers
        )
        out.append(
            f'{prefix}{e.offset},"timestamp":{"null" if ts is None else ts}'
            f'{bytes_field("key", e.key)}{bytes_field("value", e.value)},"headers":[{headers}]}}\n'
        )
    return "".join(out)


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
                f = open(path, "a", encoding="utf-8")
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
