// A header filter, in JavaScript: drops every event whose header `header`
// has the value `value` (both required config keys) and keeps the rest
// unchanged. An event without the header is kept.
//
// Built with componentize-js for the `interceptor` world of wit/. WIT names
// become camelCase, `list<u8>` a Uint8Array, `s64` a BigInt, records plain
// objects; a thrown string is the `err` of a `result`. The batch's columns
// are read, and the answer's action bytes built, through
// guests/helpers/js/flumen-guest.js.

import { Batch, DROP, KEEP } from "./flumen-guest.js";

const KNOWN = ["header", "value"];
let header;
let value;

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const interception = {
  init(config) {
    for (const [key, v] of config) {
      if (!KNOWN.includes(key)) {
        throw `unknown config key \`${key}\`; expected one of: ${KNOWN.join(", ")}`;
      }
      if (key === "header") header = v;
      if (key === "value") value = new TextEncoder().encode(v);
    }
    if (header === undefined) throw "missing required config key `header`";
    if (value === undefined) throw "missing required config key `value`";
  },

  process(source, columns) {
    const actions = new Batch(columns).actions((event) =>
      event.headers.some((h) => h.name === header && sameBytes(h.value, value)) ? DROP : KEEP,
    );
    return { actions, replacements: [], routes: [] };
  },
};
