// The log sink, in JavaScript. It writes one line per event, `offset<TAB>value`,
// into flumen's log through the `log` import, at the config key `level`
// (default `info`).
//
// It needs nothing but flumen's `sink` world, which makes it the starting
// point of `flumen new --lang js --kind sink`. For files, see file_sink/:
// a JavaScript guest reaches wasi:filesystem only through a world that
// lists it.
//
// The batch's columns are read through flumen-guest.js, the JavaScript
// guest helper (guests/helpers/js/ in flumen's repository).

import { Batch } from "./flumen-guest.js";
import { log } from "flumen:pipeline/log@0.4.1";

const LEVELS = ["trace", "debug", "info", "warn", "error"];
let level = "info";

export const delivery = {
  init(config) {
    for (const [key, value] of config) {
      if (key !== "level") throw `unknown config key \`${key}\`; expected level`;
      if (!LEVELS.includes(value)) throw `\`level\` must be one of ${LEVELS.join(", ")}`;
      level = value;
    }
  },

  deliver(source, columns) {
    const batch = new Batch(columns);
    const text = new TextDecoder();
    for (const event of batch) {
      const value = event.value === undefined ? "" : text.decode(event.value);
      log(level, `${event.offset}\t${value}`);
    }
    return []; // the events not delivered: none
  },
};
