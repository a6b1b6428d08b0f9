"""The file sink, in Python: appends each event as one JSON line to a file
per partition, in the same format as the Rust `file_sink`.

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
from wit_world import exports
from wit_world.exports.delivery import Verdict_Delivered
from wit_world.imports.log import Level, log

KNOWN = ("path", "sync", "label")

# One instance serves one partition; module state lives as long as it does.
state = {}


def bytes_field(line, field, data):
    """UTF-8 text as a string under `field`, anything else as base64 under
    `<field>_base64`, so no byte is lost or mangled."""
    if data is None:
        line[field] = None
        return
    try:
        line[field] = data.decode("utf-8")
    except UnicodeDecodeError:
        line[field + "_base64"] = base64.b64encode(data).decode("ascii")


def json_line(source, event, label):
    line = {}
    if label is not None:
        line["label"] = label
    line["topic"] = source.topic
    line["partition"] = source.partition
    line["offset"] = event.offset
    line["timestamp"] = event.timestamp
    bytes_field(line, "key", event.key)
    bytes_field(line, "value", event.value)
    headers = []
    for h in event.headers:
        header = {"name": h.name}
        bytes_field(header, "value", h.value)
        headers.append(header)
    line["headers"] = headers
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"


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
        if not batch:
            return []
        path = (
            state["template"]
            .replace("%{topic}", source.topic)
            .replace("%{partition}", str(source.partition))
        )
        text = "".join(json_line(source, e, state["label"]) for e in batch)
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
        return [Verdict_Delivered()] * len(batch)
