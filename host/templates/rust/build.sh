#!/usr/bin/env bash
# Builds {{name}}.wasm from src/lib.rs.
# With rustup: `rustup target add wasm32-wasip2` once. Where rustup cannot
# download targets (flumen's scripts/install-guest-toolchain.sh rust sets
# this up), Debian's rustc-web builds std from source.
set -euo pipefail
cd "$(dirname "$0")"
flags="-C target-feature=+simd128"
if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  RUSTFLAGS="$flags" cargo build --release --target wasm32-wasip2
else
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
  RUSTFLAGS="$flags -L native=/usr/lib/wasm32-wasi -C link-arg=--wasm-ld-path=/usr/bin/wasm-ld-22" \
    /usr/bin/cargo build --release -Zbuild-std=std,panic_abort --target wasm32-wasip2
fi
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{crate}}.wasm" {{name}}.wasm
echo "built {{name}}.wasm"
