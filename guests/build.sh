#!/usr/bin/env bash
# Builds every guest in this workspace into a WebAssembly component:
#   guests/target/wasm32-wasip2/release/<crate_name>.wasm
#
# With rustup and the wasm32-wasip2 target installed this is a plain
# `cargo build`. Without it (Debian machines where rustup cannot download
# targets), it builds std from source with Debian's rustc-web; install that
# toolchain with scripts/install-guest-toolchain.sh.
set -euo pipefail
cd "$(dirname "$0")"

# simd128: wasmtime compiles Wasm SIMD to the host's vector instructions, and
# memchr (so regex's literal search) uses it; the filter's scan of each value
# is then several times faster.
simd="-C target-feature=+simd128"

if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  RUSTFLAGS="$simd" cargo build --locked --release --target wasm32-wasip2 "$@"
else
  for f in /usr/bin/rustc /usr/bin/cargo /usr/bin/wasm-ld-22 /usr/lib/wasm32-wasi/libc.a; do
    [ -e "$f" ] || { echo "guests/build.sh: $f missing; run scripts/install-guest-toolchain.sh" >&2; exit 1; }
  done
  # Debian's cargo must match the std source it builds (-Zbuild-std), and
  # Debian ships no rust-lld, so the linker is named explicitly.
  RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
  RUSTFLAGS="$simd -L native=/usr/lib/wasm32-wasi -C link-arg=--wasm-ld-path=/usr/bin/wasm-ld-22" \
    /usr/bin/cargo build --locked --release -Zbuild-std=std,panic_abort --target wasm32-wasip2 "$@"
fi
ls -l target/wasm32-wasip2/release/*.wasm
