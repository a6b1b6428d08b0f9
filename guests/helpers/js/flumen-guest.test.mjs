// Unit tests of flumen-guest.js, run with Node (no component):
// `node --test guests/helpers/js/`.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Batch, DROP, HAS_KEY, HAS_TIMESTAMP, HAS_VALUE, KEEP, REPLACE } from "./flumen-guest.js";

const bytes = (s) => new TextEncoder().encode(s);

// Two events: one with everything, one tombstone with nothing; as
// componentize-js hands a `types.columns` to JavaScript.
function two(changes = {}) {
  return {
    offsets: new BigInt64Array([10n, 11n]),
    timestamps: new BigInt64Array([1700000000000n, 0n]),
    presence: new Uint8Array([HAS_KEY | HAS_VALUE | HAS_TIMESTAMP, 0]),
    keys: bytes("k"),
    keyEnds: new Uint32Array([1, 1]),
    values: bytes("hello"),
    valueEnds: new Uint32Array([5, 5]),
    headerEnds: new Uint32Array([2, 2]),
    headerNames: bytes("abc"),
    headerNameEnds: new Uint32Array([1, 3]),
    headerValues: new Uint8Array([0xff, 0x32]),
    headerValueEnds: new Uint32Array([1, 2]),
    ...changes,
  };
}

test("reads every field back", () => {
  const batch = new Batch(two());
  assert.equal(batch.length, 2);
  const [first, second] = [...batch];
  assert.equal(first.offset, 10n);
  assert.equal(first.timestamp, 1700000000000n);
  assert.deepEqual([...first.key], [...bytes("k")]);
  assert.deepEqual([...first.value], [...bytes("hello")]);
  assert.deepEqual(
    first.headers.map((h) => [h.name, [...h.value]]),
    [["a", [0xff]], ["bc", [0x32]]],
  );
  assert.deepEqual([...first.header("bc")], [0x32]);
  assert.equal(first.header("missing"), undefined);
  assert.equal(second.offset, 11n);
  assert.equal(second.timestamp, undefined);
  assert.equal(second.key, undefined);
  assert.equal(second.value, undefined);
  assert.deepEqual(second.headers, []);
  assert.deepEqual(batch.map((e, i) => [e.offset, i]), [[10n, 0], [11n, 1]]);
  const actions = batch.actions((e) => (e.value === undefined ? DROP : KEEP));
  assert.ok(actions instanceof Uint8Array);
  assert.deepEqual([...actions], [KEEP, DROP]);
  assert.deepEqual([KEEP, DROP, REPLACE], [0, 1, 2]);
});

test("a decoded value reads as an object", () => {
  const value = bytes('{"id": 7, "status": "paid"}');
  const [first, tombstone] = [...new Batch(two({ values: value, valueEnds: new Uint32Array([value.length, value.length]) }))];
  assert.deepEqual(first.json(), { id: 7, status: "paid" });
  assert.equal(tombstone.json(), undefined);
  assert.throws(() => [...new Batch(two())][0].json(), SyntaxError);
});

test("a malformed batch is an error naming the column", () => {
  for (const [changes, want] of [
    [{ presence: new Uint8Array([0]) }, "presence"],
    [{ keyEnds: new Uint32Array([1]) }, "key-ends"],
    [{ valueEnds: new Uint32Array([5, 6]) }, "value-ends has 6"],
    [{ valueEnds: new Uint32Array([5, 4]) }, "value-ends has 4 after 5"],
    [{ headerValueEnds: new Uint32Array([1]) }, "header-value-ends"],
  ]) {
    assert.throws(() => new Batch(two(changes)), (e) => typeof e === "string" && e.includes(want));
  }
});
