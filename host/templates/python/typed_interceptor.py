"""{{name}}: a flumen interceptor for typed events, after `schema_decode`
(which turns Avro, Protobuf or JSON Schema into a JSON object). It drops
every event whose field `field` (default `status`) equals `equals` (default
`cancelled`) and keeps the rest, and any event whose value is not a JSON
object, unchanged."""

from componentize_py_types import Err
from flumen_guest import DROP, KEEP, Batch
from wit_world import exports
from wit_world.exports.interception import Verdicts

# One instance serves one partition; module state lives as long as it does.
state = {"field": "status", "equals": "cancelled"}


def dropped(event):
    try:
        fields = event.json()  # the decoded value, as a dict
    except ValueError:
        return False
    return isinstance(fields, dict) and fields.get(state["field"]) == state["equals"]


class Interception(exports.Interception):
    def init(self, config):
        for key, value in config:
            if key not in state:
                raise Err(f"unknown config key `{key}`; expected field or equals")
            state[key] = value

    def process(self, source, batch):
        actions = bytes(DROP if dropped(e) else KEEP for e in Batch(batch))
        return Verdicts(actions=actions, replacements=[], routes=[])
