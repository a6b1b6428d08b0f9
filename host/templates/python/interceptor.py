"""{{name}}: a flumen interceptor. It drops every event whose value contains
the config key `drop_containing` (default `DROP`) and keeps the rest
unchanged."""

from componentize_py_types import Err
from flumen_guest import DROP, KEEP, Batch
from wit_world import exports
from wit_world.exports.interception import Verdicts

# One instance serves one partition; module state lives as long as it does.
state = {"needle": b"DROP"}


class Interception(exports.Interception):
    def init(self, config):
        for key, value in config:
            if key != "drop_containing":
                raise Err(f"unknown config key `{key}`; expected drop_containing")
            if not value:
                raise Err("`drop_containing` must not be empty")
            state["needle"] = value.encode("utf-8")

    def process(self, source, batch):
        needle = state["needle"]
        # One action byte per event (no bytes at all would keep every event).
        actions = bytes(DROP if needle in (e.value or b"") else KEEP for e in Batch(batch))
        return Verdicts(actions=actions, replacements=[], routes=[])
