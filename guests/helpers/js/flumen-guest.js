// flumen-guest.js: reads a flumen batch (contract flumen:pipeline@0.4,
// `types.columns`) event by event, without copying, and builds an
// interceptor's compact answer.
//
// A batch crosses into the guest as a dozen flat lists: every event's
// offset, timestamp and presence bits, all keys back to back with where
// each ends, all values the same way, and the headers likewise. In
// JavaScript each is one typed array (`BigInt64Array`, `Uint32Array`,
// `Uint8Array`), several times cheaper to receive than one object per
// event. This module gives back the event-by-event view:
//
//   import { Batch } from "./flumen-guest.js";
//
//   export const delivery = {
//     deliver(source, columns) {
//       const batch = new Batch(columns);
//       for (const e of batch) use(e.offset, e.value, e.headers);
//       return []; // the events not delivered: none
//     },
//   };
//
// An interceptor answers with one action byte per event (`KEEP`, `DROP`,
// `REPLACE`), or with none at all to keep every event:
//
//   process(source, columns) {
//     const actions = new Batch(columns).actions((e) => (e.value ? KEEP : DROP));
//     return { actions, replacements: [], routes: [] };
//   }
//
// A key or value is a `Uint8Array` view into the batch (no copy), or
// `undefined` when absent; offsets and timestamps are `BigInt`s, as
// componentize-js gives every WIT `s64`.

/** `presence` bit: the event has a key. */
export const HAS_KEY = 1;
/** `presence` bit: the event has a value (clear: a tombstone). */
export const HAS_VALUE = 2;
/** `presence` bit: the broker supplied a timestamp. */
export const HAS_TIMESTAMP = 4;

/** Action byte: keep the event as it is. */
export const KEEP = 0;
/** Action byte: drop the event; it reaches no sink and may be committed. */
export const DROP = 1;
/** Action byte: replace the event with the next of `replacements`. */
export const REPLACE = 2;

const utf8 = new TextDecoder("utf-8");

// Where entry `i` of `ends` starts: the previous entry's end, or 0.
function start(ends, i) {
  return i === 0 ? 0 : ends[i - 1];
}

// Throws (the call's error) unless `ends` are `count` non-decreasing
// positions within `len`.
function checkEnds(ends, count, len, what) {
  if (ends.length !== count) {
    throw `malformed batch: ${ends.length} entries in ${what}, expected ${count}`;
  }
  let last = 0;
  for (let i = 0; i < ends.length; i++) {
    if (ends[i] < last || ends[i] > len) {
      throw `malformed batch: ${what} has ${ends[i]} after ${last}, outside 0..=${len}`;
    }
    last = ends[i];
  }
}

/** One event of a `Batch`; its fields are read from the columns when asked for. */
export class Event {
  constructor(columns, i) {
    this.columns = columns;
    this.index = i;
  }

  /** Offset within the partition (a `BigInt`). */
  get offset() {
    return this.columns.offsets[this.index];
  }

  /** Milliseconds since the Unix epoch (a `BigInt`), or `undefined`. */
  get timestamp() {
    const c = this.columns;
    return c.presence[this.index] & HAS_TIMESTAMP ? c.timestamps[this.index] : undefined;
  }

  /** The key as a `Uint8Array`, or `undefined`. */
  get key() {
    const c = this.columns, i = this.index;
    if (!(c.presence[i] & HAS_KEY)) return undefined;
    return c.keys.subarray(start(c.keyEnds, i), c.keyEnds[i]);
  }

  /** The value as a `Uint8Array`, or `undefined` for a tombstone. */
  get value() {
    const c = this.columns, i = this.index;
    if (!(c.presence[i] & HAS_VALUE)) return undefined;
    return c.values.subarray(start(c.valueEnds, i), c.valueEnds[i]);
  }

  /** The headers as `[{ name, value }]` (a string and a `Uint8Array`), in
   * the order the producer wrote them; a name may repeat. */
  get headers() {
    const c = this.columns, i = this.index;
    const out = [];
    for (let h = start(c.headerEnds, i); h < c.headerEnds[i]; h++) {
      out.push({
        name: utf8.decode(c.headerNames.subarray(start(c.headerNameEnds, h), c.headerNameEnds[h])),
        value: c.headerValues.subarray(start(c.headerValueEnds, h), c.headerValueEnds[h]),
      });
    }
    return out;
  }

  /** The value of the first header called `name`, or `undefined`. */
  header(name) {
    const found = this.headers.find((h) => h.name === name);
    return found === undefined ? undefined : found.value;
  }

  /** The value parsed as JSON, or `undefined` for a tombstone. After
   * `schema_decode` (an Avro, Protobuf or JSON Schema value), an object of
   * the value's fields. Throws a `SyntaxError` if it is not JSON. */
  json() {
    const value = this.value;
    return value === undefined ? undefined : JSON.parse(utf8.decode(value));
  }
}

/** The events of a `types.columns`, in batch order. Constructing one
 * checks the columns (lengths, and that every end lies within its buffer
 * and none goes backwards) and throws a message naming what is wrong; the
 * host never sends a malformed batch. */
export class Batch {
  constructor(columns) {
    const c = columns, n = c.offsets.length;
    if (c.timestamps.length !== n || c.presence.length !== n) {
      throw "malformed batch: timestamps or presence do not have one entry per event";
    }
    const headers = c.headerNameEnds.length;
    checkEnds(c.keyEnds, n, c.keys.length, "key-ends");
    checkEnds(c.valueEnds, n, c.values.length, "value-ends");
    checkEnds(c.headerEnds, n, headers, "header-ends");
    checkEnds(c.headerNameEnds, headers, c.headerNames.length, "header-name-ends");
    checkEnds(c.headerValueEnds, headers, c.headerValues.length, "header-value-ends");
    this.columns = c;
    this.length = n;
  }

  /** Event `i` (below `length`). */
  event(i) {
    return new Event(this.columns, i);
  }

  *[Symbol.iterator]() {
    for (let i = 0; i < this.length; i++) yield new Event(this.columns, i);
  }

  /** `f(event, i)` for every event, in order, as an array. */
  map(f) {
    const out = new Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = f(new Event(this.columns, i), i);
    return out;
  }

  /** The action byte `decide(event, i)` returns for every event, in order,
   * as the `Uint8Array` an interceptor answers with (`verdicts.actions`). */
  actions(decide) {
    const out = new Uint8Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = decide(new Event(this.columns, i), i);
    return out;
  }
}
