#!/usr/bin/env bash
# Builds smserve and serves a model on :8080 (SAGEMAKER_BIND_TO_PORT to change).
# With no argument it serves the bundled sample model in models/sample.
#   scripts/serve.sh [MODEL_DIR_OR_TARBALL]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target smserve
export SM_MODEL_DIR="${1:-$PWD/models/sample}"
exec build/smserve serve
