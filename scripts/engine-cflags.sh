#!/usr/bin/env bash
# C/C++ flags for building llama.cpp (feature `llamacpp`) the way people build it from source:
# for this machine's CPU (ggml's GGML_NATIVE), except Intel AMX. llama.cpp's AMX buffer type
# accepts MLA's 3-D attn_k_b/attn_v_b at load time and then cannot run them (GGML_ASSERT
# "cur_backend_id != -1" in the scheduler), so deepseek2 models would not run at all; AMX is
# also absent from every device this tool profiles. The Rust code itself stays portable.
set -euo pipefail
case "$(uname -m)" in
    x86_64)
        flags="-march=native"
        if grep -qw amx_tile /proc/cpuinfo 2>/dev/null; then
            flags="$flags -mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
        fi
        ;;
    aarch64|arm64) flags="-mcpu=native" ;;
    *) flags="" ;;
esac
echo "$flags"
