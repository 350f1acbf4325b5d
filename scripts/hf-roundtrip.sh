#!/usr/bin/env bash
# Round trip through transformers itself (see hf_roundtrip.py): installs transformers from PyPI
# (no torch: configs only) into a venv under target/ once, then checks exported configs of the
# shipped spaces' fronts and of the hybrid families (tests/fixtures/hybrid/exported/).
# Usage: scripts/hf-roundtrip.sh [BIN] [RESULTS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/rooflinebench}
RESULTS=${2:-results}
VENV=${HF_VENV:-target/hf-venv}
# transformers 5 or later: the hybrid families' classes (qwen3_5 arrived in 5.x; lfm2,
# gemma3_text, smollm3, gpt_oss, qwen3_next, granitemoehybrid in 4.57).
if ! "$VENV/bin/python" -c 'import transformers.models.qwen3_5.configuration_qwen3_5' 2>/dev/null; then
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade 'transformers>=5'
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hf-roundtrip.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# transformers warns once that torch is absent: configs need no torch.
TRANSFORMERS_VERBOSITY=error "$VENV/bin/python" scripts/hf_roundtrip.py "$BIN" "$RESULTS" "$WORK"
