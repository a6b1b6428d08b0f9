// {{name}}: a flumen interceptor. It drops every event whose value contains
// the config key `drop_containing` (default `DROP`) and keeps the rest
// unchanged.
//
// WIT names become camelCase, `list<u8>` a Uint8Array, `s64` a BigInt,
// records plain objects; a thrown string is the `err` of a `result`. A batch
// comes as columns; flumen-guest.js reads them event by event and builds
// the answer's action bytes.

import { Batch, DROP, KEEP } from "./flumen-guest.js";

let needle = new TextEncoder().encode("DROP");

function contains(haystack, n) {
  outer: for (let i = 0; i + n.length <= haystack.length; i++) {
    for (let j = 0; j < n.length; j++) if (haystack[i + j] !== n[j]) continue outer;
    return true;
  }
  return false;
}

export const interception = {
  init(config) {
    for (const [key, value] of config) {
      if (key !== "drop_containing") throw `unknown config key \`${key}\`; expected drop_containing`;
      if (value === "") throw "`drop_containing` must not be empty";
      needle = new TextEncoder().encode(value);
    }
  },

  process(source, columns) {
    // One action byte per event (no bytes at all would keep every event).
    const actions = new Batch(columns).actions((event) =>
      event.value !== undefined && contains(event.value, needle) ? DROP : KEEP,
    );
    return { actions, replacements: [], routes: [] };
  },
};
