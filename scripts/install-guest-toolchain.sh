#!/usr/bin/env bash
# Installs what guests/build.sh needs, if it is not there already:
# - with rustup: the wasm32-wasip2 target (works where rustup can download);
# - otherwise: Debian's rustc-web (with its std source), lld-22 and wasi-libc.
set -euo pipefail

if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  exit 0
fi
if [ -x /usr/bin/rustc ] && [ -x /usr/bin/wasm-ld-22 ] && [ -f /usr/lib/wasm32-wasi/libc.a ] \
   && [ -d /usr/lib/rustlib/src/rust/library ]; then
  exit 0
fi
if command -v rustup >/dev/null 2>&1 && timeout 60 rustup target add wasm32-wasip2 >/dev/null 2>&1; then
  exit 0
fi
echo "installing the Debian guest toolchain (rustc-web, rust-web-src, lld-22, wasi-libc)" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq rustc-web cargo-web rust-web-src lld-22 wasi-libc >/dev/null
