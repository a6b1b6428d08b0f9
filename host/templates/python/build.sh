#!/usr/bin/env bash
# Builds {{name}}.wasm from app.py with componentize-py:
#   pip install componentize-py==0.25.1
# ($COMPONENTIZE_PY names another componentize-py.)
set -euo pipefail
tool=${COMPONENTIZE_PY:-componentize-py}
case $tool in */*) tool=$(realpath "$tool") ;; esac   # a path, relative to the caller
cd "$(dirname "$0")"
"$tool" -d wit -w {{world}} componentize app -o {{name}}.wasm >/dev/null
echo "built {{name}}.wasm"
