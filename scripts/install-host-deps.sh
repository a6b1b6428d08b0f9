#!/usr/bin/env bash
# Installs what building the flumen host needs beyond Rust and gcc, if it is
# not there already:
# - OpenSSL's and libcurl's headers (Debian libssl-dev, libcurl4-openssl-dev)
#   and pkg-config: librdkafka is built with TLS against the system OpenSSL
#   and with OAUTHBEARER/OIDC against the system libcurl, the libraries an
#   operator's machine already has (libssl3, libcurl4). zstd is built from
#   source by its -sys crate and linked in statically, so it needs nothing.
# With --test, also what the connectivity tests start: stunnel4 (a TLS
# listener in front of tansu) and openssl (the test CA).
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
pkg-config --exists libcurl 2>/dev/null || missing+=(libcurl4-openssl-dev)
if [ "${1:-}" = "--test" ]; then
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v stunnel4 >/dev/null 2>&1 || command -v stunnel >/dev/null 2>&1 || missing+=(stunnel4)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
