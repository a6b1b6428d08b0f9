// The file sink, in JavaScript: appends each event as one JSON line to a
// file per partition, in the same format as the Rust `file_sink`.
//
// Config keys:
// - `path` (required): the file as the guest sees it, with `%{partition}`
//   and optionally `%{topic}` filled in per batch, e.g.
//   `/out/events-%{partition}.jsonl`. Its directory must be granted
//   read-write with `dirs` in the host config.
// - `sync` (default `true`): sync the file's data before reporting a batch
//   delivered.
// - `label` (optional): added to every line as `"label"`.
//
// A batch is reported delivered only after its lines are written (and
// synced); a failed write fails the whole call, which the host retries.
//
// Files are reached through wasi:filesystem directly (this guest's world,
// in wit/, adds it to flumen's `sink`): StarlingMonkey has no `fs` module.
// The batch's columns are read through guests/helpers/js/flumen-guest.js.

import { Batch } from "./flumen-guest.js";
import { log } from "flumen:pipeline/log@0.4.1";
import { getDirectories } from "wasi:filesystem/preopens@0.2.12";

const KNOWN = ["path", "sync", "label"];

// One instance serves one partition; module state lives as long as it does.
let template = null;
let sync = true;
let label = undefined;
// The open file: its path, descriptor and where the next line goes.
let file = null;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

// The granted directory holding `path`, and `path` relative to it.
function resolve(path) {
  for (const [dir, guestPath] of getDirectories()) {
    const prefix = guestPath.endsWith("/") ? guestPath : guestPath + "/";
    if (path.startsWith(prefix)) return [dir, path.slice(prefix.length)];
  }
  return null;
}

function why(e) {
  return e && e.payload !== undefined ? `${e.payload}` : `${e}`;
}

// UTF-8 text as a string under `field`, anything else as base64 under
// `<field>_base64`, so no byte is lost or mangled.
function bytesField(line, field, data) {
  if (data === undefined) {
    line[field] = null;
    return;
  }
  try {
    line[field] = utf8.decode(data);
  } catch {
    let binary = "";
    for (let i = 0; i < data.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
    }
    line[field + "_base64"] = btoa(binary);
  }
}

function jsonLine(source, event) {
  const line = {};
  if (label !== undefined) line.label = label;
  line.topic = source.topic;
  line.partition = source.partition;
  line.offset = Number(event.offset);
  line.timestamp = event.timestamp === undefined ? null : Number(event.timestamp);
  bytesField(line, "key", event.key);
  bytesField(line, "value", event.value);
  line.headers = event.headers.map((h) => {
    const header = { name: h.name };
    bytesField(header, "value", h.value);
    return header;
  });
  return JSON.stringify(line) + "\n";
}

function open(path) {
  const found = resolve(path);
  if (found === null) {
    throw `\`${path}\` is not under a directory granted to this component: grant it read-write with \`dirs\` in the host config`;
  }
  const [dir, relative] = found;
  const fd = dir.openAt({}, relative, { create: true }, { write: true });
  return { path, fd, offset: fd.stat().size };
}

export const delivery = {
  init(config) {
    const settings = new Map(config);
    for (const key of settings.keys()) {
      if (!KNOWN.includes(key)) {
        throw `unknown config key \`${key}\`; expected one of: ${KNOWN.join(", ")}`;
      }
    }
    const path = settings.get("path");
    if (path === undefined) throw "missing required config key `path`";
    if (!path.includes("%{partition}")) {
      throw `config key \`path\` must contain \`%{partition}\` (got \`${path}\`): each partition has its own sink instance, and instances sharing one file would interleave their lines`;
    }
    const s = settings.get("sync") ?? "true";
    if (s !== "true" && s !== "false") throw `config key \`sync\` must be true or false, got \`${s}\``;
    const cut = path.lastIndexOf("/");
    const directory = cut > 0 ? path.slice(0, cut) : "/";
    if (!directory.includes("%{") && resolve(`${directory}/`) === null) {
      throw `directory \`${directory}\` of \`path\` is not visible to this component: grant it read-write with \`dirs\` in the host config`;
    }
    template = path;
    sync = s === "true";
    label = settings.get("label");
    log("debug", `appending to ${path} (sync=${s})`);
  },

  deliver(source, columns) {
    const batch = new Batch(columns);
    if (batch.length === 0) return [];
    const path = template
      .replaceAll("%{topic}", source.topic)
      .replaceAll("%{partition}", `${source.partition}`);
    const bytes = encoder.encode(batch.map((e) => jsonLine(source, e)).join(""));
    try {
      if (file === null || file.path !== path) file = open(path);
      let done = 0;
      while (done < bytes.length) {
        const n = file.fd.write(bytes.subarray(done), file.offset + BigInt(done));
        done += Number(n);
      }
      file.offset += BigInt(bytes.length);
      if (sync) file.fd.syncData();
    } catch (e) {
      file = null;
      throw `writing ${batch.length} events to ${path}: ${why(e)}`;
    }
    return []; // the events not delivered: none, every line is written
  },
};
