// {{name}}: a flumen interceptor for typed events, after `schema_decode`
// (which turns Avro, Protobuf or JSON Schema into a JSON object). It drops
// every event whose field `field` (default `status`) equals `equals`
// (default `cancelled`) and keeps the rest, and any event whose value is
// not a JSON object, unchanged.

import { Batch, DROP, KEEP } from "./flumen-guest.js";

const settings = { field: "status", equals: "cancelled" };

function dropped(event) {
  let fields;
  try {
    fields = event.json(); // the decoded value, as an object
  } catch {
    return false;
  }
  return fields !== null && typeof fields === "object" && fields[settings.field] === settings.equals;
}

export const interception = {
  init(config) {
    for (const [key, value] of config) {
      if (!(key in settings)) throw `unknown config key \`${key}\`; expected field or equals`;
      settings[key] = value;
    }
  },

  process(source, columns) {
    const actions = new Batch(columns).actions((event) => (dropped(event) ? DROP : KEEP));
    return { actions, replacements: [], routes: [] };
  },
};
