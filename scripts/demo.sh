#!/usr/bin/env bash
# Quick start, command 1: installs the guest toolchain if needed, builds the
# guests, and runs `flumen demo` on an embedded Kafka broker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-host-deps.sh
scripts/install-guest-toolchain.sh rust
guests/build.sh rust >/dev/null
exec cargo run --quiet --bin flumen -- demo "$@"
