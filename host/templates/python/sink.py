"""{{name}}: a flumen sink. It appends one line per event, `offset<TAB>value`,
to a file per partition: config key `path` (default
`/out/{{name}}-%{partition}.txt`), whose directory the pipeline grants with
`dirs = [{ host = "...", guest = "/out" }]`."""

from componentize_py_types import Err
from flumen_guest import Batch
from wit_world import exports

state = {"path": "/out/{{name}}-%{partition}.txt"}


class Delivery(exports.Delivery):
    def init(self, config):
        for key, value in config:
            if key != "path":
                raise Err(f"unknown config key `{key}`; expected path")
            state["path"] = value

    def deliver(self, source, batch):
        batch = Batch(batch)
        path = state["path"].replace("%{partition}", str(source.partition))
        lines = b"".join(b"%d\t%s\n" % (e.offset, e.value or b"") for e in batch)
        # Delivered means written: an error fails the whole call, and flumen
        # retries it (nothing is committed before).
        try:
            with open(path, "ab") as f:
                f.write(lines)
        except OSError as e:
            raise Err(f"cannot append to {path}: {e}")
        # The events not delivered: none, every line is written.
        return []
