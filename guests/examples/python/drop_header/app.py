"""A header filter, in Python: drops every event whose header `header` has
the value `value` (both required), and keeps the rest unchanged.

For example `header = "level"`, `value = "debug"` drops debug events. An
event without the header is kept.

It reads the batch's columns through `flumen_guest` (guests/helpers/python/).
"""

from componentize_py_types import Err
from flumen_guest import Batch
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
        wanted = (state["header"], state["value"])
        keep = Verdict(action=Action_Keep(), route=None)
        drop = Verdict(action=Action_Drop(), route=None)
        return [drop if wanted in e.headers else keep for e in Batch(batch)]
