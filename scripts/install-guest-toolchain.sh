#!/usr/bin/env bash
# Installs what guests/build.sh needs, if it is not there already.
#   scripts/install-guest-toolchain.sh [rust] [python]   (default: all)
# - rust: with rustup, the wasm32-wasip2 target (where rustup can download);
#   otherwise Debian's rustc-web (with its std source), lld-22 and wasi-libc.
# - python: componentize-py, pinned, in the venv target/guest-venv.
# - js: componentize-js and jco (with preview2-shim, which componentize-js
#   imports but a lockfile install does not bring), pinned by
#   guests/examples/js/package-lock.json, into guests/examples/js/node_modules.
# - c: clang with wasi-libc and lld-22 (Debian packages); the bindings tool
#   in guests/tools/c-bindgen is built by guests/build.sh with the host's cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    $sudo apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

install_rust() {
  if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    return
  fi
  if [ -x /usr/bin/rustc ] && [ -x /usr/bin/wasm-ld-22 ] && [ -f /usr/lib/wasm32-wasi/libc.a ] \
     && [ -d /usr/lib/rustlib/src/rust/library ]; then
    return
  fi
  if command -v rustup >/dev/null 2>&1 && timeout 60 rustup target add wasm32-wasip2 >/dev/null 2>&1; then
    return
  fi
  echo "installing the Debian guest toolchain (rustc-web, rust-web-src, lld-22, wasi-libc)" >&2
  apt_install rustc-web cargo-web rust-web-src lld-22 wasi-libc
}

install_python() {
  local venv=target/guest-venv
  if [ -x "$venv/bin/componentize-py" ] && "$venv/bin/componentize-py" --version | grep -q ' 0\.25\.1'; then
    return
  fi
  echo "installing componentize-py 0.25.1 into $venv" >&2
  # Debian's python3 has no venv module without the python3-venv package.
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet componentize-py==0.25.1
}

install_js() {
  if [ -x guests/examples/js/node_modules/.bin/componentize-js ] \
     && [ guests/examples/js/node_modules/.package-lock.json -nt guests/examples/js/package-lock.json ]; then
    return
  fi
  echo "installing componentize-js 0.23.0 and jco 1.35.0 into guests/examples/js/node_modules" >&2
  # Not `npm ci`: npm 11 refuses this lockfile because it does not list the
  # optional native packages of other platforms (arm64, Windows), which npm
  # leaves out when it writes the lockfile here. `install --no-save` installs
  # the locked versions and leaves the lockfile as it is.
  (cd guests/examples/js && npm install --no-save --no-audit --no-fund --loglevel=error)
}

install_c() {
  if [ -x /usr/bin/clang ] && [ -x /usr/bin/wasm-ld-22 ] && [ -f /usr/lib/wasm32-wasi/libc.a ]; then
    return
  fi
  echo "installing clang, lld-22 and wasi-libc for the C guests" >&2
  apt_install clang libclang-rt-14-dev-wasm32 lld-22 wasi-libc
}

langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(rust python js c)
for lang in "${langs[@]}"; do
  case "$lang" in
    rust) install_rust ;;
    python) install_python ;;
    js) install_js ;;
    c) install_c ;;
    *) echo "install-guest-toolchain.sh: unknown language \`$lang\`" >&2; exit 2 ;;
  esac
done
