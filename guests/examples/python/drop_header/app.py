"""A header filter, in Python: drops every event whose header `header` has
the value `value` (both required), and keeps the rest unchanged.

For example `header = "level"`, `value = "debug"` drops debug events. An
event without the header is kept.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.interception import Action_Drop, Action_Keep, Verdict

KNOWN = ("header", "value")

state = {}


class Interception(exports.Interception):
    def init(self, config):
        config = dict(config)
        unknown = [k for k in config if k not in KNOWN]
        if unknown:
            raise Err(f"unknown config key `{unknown[0]}`; expected one of: {', '.join(KNOWN)}")
        for key in KNOWN:
            if key not in config:
                raise Err(f"missing required config key `{key}`")
        state["header"] = config["header"]
        state["value"] = config["value"].encode("utf-8")

    def process(self, source, batch):
        name, value = state["header"], state["value"]
        keep = Verdict(action=Action_Keep(), route=None)
        drop = Verdict(action=Action_Drop(), route=None)
        return [
            drop if any(h.name == name and h.value == value for h in e.headers) else keep
            for e in batch
        ]
