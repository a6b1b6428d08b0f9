"""Unit tests of flumen_guest.py, run with plain CPython (no component):
`python3 -m unittest discover guests/helpers/python`."""

import unittest
from types import SimpleNamespace

from flumen_guest import HAS_KEY, HAS_TIMESTAMP, HAS_VALUE, Batch


def two(**changes):
    """Two events: one with everything, one tombstone with nothing."""
    columns = dict(
        offsets=[10, 11],
        timestamps=[1_700_000_000_000, 0],
        presence=bytes([HAS_KEY | HAS_VALUE | HAS_TIMESTAMP, 0]),
        keys=b"k",
        key_ends=[1, 1],
        values=b"hello",
        value_ends=[5, 5],
        header_ends=[2, 2],
        header_names=b"abc",
        header_name_ends=[1, 3],
        header_values=b"\xff2",
        header_value_ends=[1, 2],
    )
    columns.update(changes)
    return SimpleNamespace(**columns)


class BatchTest(unittest.TestCase):
    def test_reads_every_field_back(self):
        batch = Batch(two())
        self.assertEqual(len(batch), 2)
        first, second = list(batch)
        self.assertEqual(
            (first.offset, first.timestamp, first.key, first.value),
            (10, 1_700_000_000_000, b"k", b"hello"),
        )
        self.assertEqual(first.headers, [("a", b"\xff"), ("bc", b"2")])
        self.assertEqual(first.header("bc"), b"2")
        self.assertIsNone(first.header("missing"))
        self.assertEqual(
            (second.offset, second.timestamp, second.key, second.value, second.headers),
            (11, None, None, None, []),
        )
        self.assertEqual(batch[-1].offset, 11)
        with self.assertRaises(IndexError):
            batch[2]

    def test_reads_a_column_at_a_time_as_event_by_event(self):
        batch = Batch(two())
        self.assertEqual(batch.offsets, [10, 11])
        self.assertEqual(batch.timestamps(), [1_700_000_000_000, None])
        self.assertEqual(batch.keys(), [b"k", None])
        self.assertEqual(batch.values(), [b"hello", None])
        self.assertEqual(batch.headers(), [[("a", b"\xff"), ("bc", b"2")], []])
        for column, field in [
            (batch.timestamps(), "timestamp"),
            (batch.keys(), "key"),
            (batch.values(), "value"),
            (batch.headers(), "headers"),
        ]:
            self.assertEqual(column, [getattr(e, field) for e in batch], field)

    def test_finds_events_with_a_header_as_event_by_event(self):
        # Four events: headers (a, x), none, (b, y) (a, z), (a, x) (a, x).
        columns = two(
            offsets=[1, 2, 3, 4],
            timestamps=[0] * 4,
            presence=bytes(4),
            key_ends=[0] * 4,
            value_ends=[0] * 4,
            keys=b"",
            values=b"",
            header_ends=[1, 1, 3, 5],
            header_names=b"abaaa",
            header_name_ends=[1, 2, 3, 4, 5],
            header_values=b"xyzxx",
            header_value_ends=[1, 2, 3, 4, 5],
        )
        batch = Batch(columns)
        for name, value in [("a", b"x"), ("a", b"z"), ("a", None), ("b", b"y"), ("c", None)]:
            expected = [
                any(n == name and (value is None or v == value) for n, v in e.headers)
                for e in batch
            ]
            self.assertEqual(batch.with_header(name, value), expected, (name, value))
        self.assertEqual(batch.with_header("a", b"x"), [True, False, False, True])
        self.assertEqual(Batch(two(header_ends=[0, 0], header_name_ends=[],
                                   header_value_ends=[])).with_header("a"), [False, False])

    def test_a_decoded_value_reads_as_a_dict(self):
        value = b'{"id": 7, "status": "paid"}'
        batch = Batch(two(values=value, value_ends=[len(value), len(value)]))
        first, tombstone = list(batch)
        self.assertEqual(first.json(), {"id": 7, "status": "paid"})
        self.assertIsNone(tombstone.json())
        with self.assertRaises(ValueError):
            Batch(two()).__getitem__(0).json()

    def test_an_empty_batch_has_no_events(self):
        empty = {k: type(v)() for k, v in vars(two()).items()}
        batch = Batch(SimpleNamespace(**empty))
        self.assertEqual(list(batch), [])
        self.assertEqual((batch.keys(), batch.values(), batch.headers()), ([], [], []))

    def test_a_malformed_batch_is_an_error_naming_the_column(self):
        for changes, want in [
            (dict(presence=b"\x00"), "presence"),
            (dict(key_ends=[1]), "key-ends"),
            (dict(value_ends=[5, 6]), "value-ends ends at 6, past 5 bytes"),
            (dict(header_value_ends=[1]), "number of headers"),
            (dict(header_name_ends=[1, 4]), "header-name-ends"),
        ]:
            with self.assertRaises(ValueError) as raised:
                Batch(two(**changes))
            self.assertIn(want, str(raised.exception))


if __name__ == "__main__":
    unittest.main()
