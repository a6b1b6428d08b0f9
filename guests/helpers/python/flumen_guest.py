"""Reads a flumen batch (contract flumen:pipeline@0.4, `types.columns`)
event by event, and names the bytes of an interceptor's compact answer.

A batch crosses into the guest as a dozen flat lists: every event's offset,
timestamp and presence bits, all keys back to back with where each ends, all
values the same way, and the headers likewise. That is several times cheaper
than one object per event, and this module gives back the event-by-event
view, copying only the fields a guest reads:

    from flumen_guest import Batch

    class Delivery(exports.Delivery):
        def deliver(self, source, batch):
            for e in Batch(batch):
                use(e.offset, e.value, e.headers)
            return []  # the events not delivered: none

An interceptor answers with one action byte per event (`KEEP`, `DROP`,
`REPLACE`), or with no bytes at all to keep every event:

    from flumen_guest import DROP, KEEP, Batch
    from wit_world.exports.interception import Verdicts

        def process(self, source, batch):
            actions = bytes(DROP if e.value is None else KEEP for e in Batch(batch))
            return Verdicts(actions=actions, replacements=[], routes=[])

Answering in bytes matters in Python: building an object per event cost
about 2 microseconds an event, most of a simple interceptor's time.

Copy this file next to your `app.py` (`flumen new` does), or pass its
directory to componentize-py with `-p`.
"""

import json

HAS_KEY = 1
"""`presence` bit: the event has a key."""
HAS_VALUE = 2
"""`presence` bit: the event has a value (clear: a tombstone)."""
HAS_TIMESTAMP = 4
"""`presence` bit: the broker supplied a timestamp."""

KEEP = 0
"""Action byte: keep the event as it is."""
DROP = 1
"""Action byte: drop the event; it reaches no sink and may be committed."""
REPLACE = 2
"""Action byte: replace the event with the next of `replacements`."""

try:
    # Raised from a guest's export, componentize-py's `Err` becomes the
    # call's error result, which names the problem to the operator.
    from componentize_py_types import Err as _Error
except ImportError:  # outside a component, e.g. in the helper's own tests
    _Error = ValueError


class Event:
    """One event of a `Batch`. `offset` is read up front; `timestamp`,
    `key`, `value` and `headers` are read from the columns when asked for.
    `key` and `value` are `bytes`, or `None` when absent (a value of `None`
    is a tombstone)."""

    __slots__ = ("_c", "_i", "offset")

    def __init__(self, columns, i):
        self._c = columns
        self._i = i
        self.offset = columns.offsets[i]

    @property
    def timestamp(self):
        """Milliseconds since the Unix epoch, or `None`."""
        c, i = self._c, self._i
        return c.timestamps[i] if c.presence[i] & HAS_TIMESTAMP else None

    @property
    def key(self):
        """The key as `bytes`, or `None`."""
        c, i = self._c, self._i
        if not c.presence[i] & HAS_KEY:
            return None
        ends = c.key_ends
        return c.keys[ends[i - 1] if i else 0 : ends[i]]

    @property
    def value(self):
        """The value as `bytes`, or `None` for a tombstone."""
        c, i = self._c, self._i
        if not c.presence[i] & HAS_VALUE:
            return None
        ends = c.value_ends
        return c.values[ends[i - 1] if i else 0 : ends[i]]

    @property
    def headers(self):
        """The headers as a list of `(name: str, value: bytes)`, in the
        order the producer wrote them; a name may repeat."""
        c, i = self._c, self._i
        ends = c.header_ends
        first, end = (ends[i - 1] if i else 0), ends[i]
        if first == end:
            return []
        names, name_ends = c.header_names, c.header_name_ends
        values, value_ends = c.header_values, c.header_value_ends
        out = []
        for h in range(first, end):
            n0 = name_ends[h - 1] if h else 0
            v0 = value_ends[h - 1] if h else 0
            out.append((names[n0 : name_ends[h]].decode("utf-8"), values[v0 : value_ends[h]]))
        return out

    def header(self, name):
        """The value of the first header called `name`, or `None`."""
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def json(self):
        """The value parsed as JSON, or `None` for a tombstone. After
        `schema_decode` (an Avro, Protobuf or JSON Schema value), a `dict`
        of the value's fields. Raises `ValueError` if it is not JSON."""
        value = self.value
        return None if value is None else json.loads(value)


class Batch:
    """The events of a `types.columns`, in batch order: `len(batch)`,
    `batch[i]` and `for e in batch` give `Event`s.

    Building one checks that every list has the length the contract says
    and that every buffer is as long as its last end, and raises `Err` (the
    call's error) naming what is wrong otherwise. The host never sends a
    malformed batch; Python slicing cannot read out of bounds, so the check
    is only there to turn a broken batch into a clear error."""

    __slots__ = ("columns", "_n")

    def __init__(self, columns):
        self.columns = columns
        self._n = n = len(columns.offsets)
        c = columns
        for what, got in (
            ("timestamps", len(c.timestamps)),
            ("presence", len(c.presence)),
            ("key-ends", len(c.key_ends)),
            ("value-ends", len(c.value_ends)),
            ("header-ends", len(c.header_ends)),
        ):
            if got != n:
                raise _Error(f"malformed batch: {got} entries in {what}, expected {n}")
        headers = len(c.header_name_ends)
        if len(c.header_value_ends) != headers or (n and c.header_ends[-1] != headers):
            raise _Error("malformed batch: header columns disagree on the number of headers")
        for what, ends, buf in (
            ("key-ends", c.key_ends, c.keys),
            ("value-ends", c.value_ends, c.values),
            ("header-name-ends", c.header_name_ends, c.header_names),
            ("header-value-ends", c.header_value_ends, c.header_values),
        ):
            if ends and ends[-1] > len(buf):
                raise _Error(f"malformed batch: {what} ends at {ends[-1]}, past {len(buf)} bytes")

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        if not -self._n <= i < self._n:
            raise IndexError(i)
        return Event(self.columns, i % self._n)

    def __iter__(self):
        c = self.columns
        return (Event(c, i) for i in range(self._n))

    # A column at a time: each of these reads one field of every event in
    # one comprehension, which costs a fraction of reading the same field
    # event by event through `Event` objects (a guest that touches every
    # event should prefer them).

    @property
    def offsets(self):
        """Every event's offset, in batch order."""
        return self.columns.offsets

    def timestamps(self):
        """Every event's timestamp (milliseconds since the Unix epoch), or
        `None` where the broker supplied none."""
        c = self.columns
        return [t if p & HAS_TIMESTAMP else None for t, p in zip(c.timestamps, c.presence)]

    def keys(self):
        """Every event's key as `bytes`, or `None` where it has none."""
        c = self.columns
        return _column(c.keys, c.key_ends, c.presence, HAS_KEY)

    def values(self):
        """Every event's value as `bytes`, or `None` for a tombstone."""
        c = self.columns
        return _column(c.values, c.value_ends, c.presence, HAS_VALUE)

    def headers(self):
        """Every event's headers, as `Event.headers` gives them."""
        c = self.columns
        out = []
        first = 0
        for i, end in enumerate(c.header_ends):
            out.append(Event(c, i).headers if end != first else [])
            first = end
        return out

    def with_header(self, name, value=None):
        """Whether each event has a header called `name` (a `str`) and, if
        `value` (`bytes`) is given, with that value: a list of `bool` in
        batch order. It walks the headers, not the events, and builds no
        `Event`: events without headers cost nothing but their `False`."""
        c = self.columns
        out = [False] * self._n
        name_ends = c.header_name_ends
        if not name_ends:
            return out
        wanted = name.encode("utf-8")
        names, values, value_ends = c.header_names, c.header_values, c.header_value_ends
        ends = c.header_ends
        event = n0 = v0 = 0
        for h, n1 in enumerate(name_ends):
            v1 = value_ends[h]
            if names[n0:n1] == wanted and (value is None or values[v0:v1] == value):
                # Header `h` belongs to the first event whose headers end past it.
                while ends[event] <= h:
                    event += 1
                out[event] = True
            n0, v0 = n1, v1
        return out


def _column(buf, ends, presence, bit):
    """The slices of `buf` that `ends` delimit, `None` where `presence`
    lacks `bit`."""
    starts = [0]
    starts += ends[:-1]
    return [buf[s:e] if p & bit else None for s, e, p in zip(starts, ends, presence)]
