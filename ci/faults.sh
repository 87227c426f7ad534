#!/usr/bin/env bash
# The behavioural suite over the fault injector, wrapped around both backends (the tests'
# helper does the wrapping when RINGLOOP_FAULT_SEED is set), once per seed. A failure names
# its seed; replay it with `RINGLOOP_FAULT_SEED=<seed> cargo test`.
# Usage: ci/faults.sh [SEED...]   (default: three fixed seeds)
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=("$@")
if [ ${#seeds[@]} -eq 0 ]; then
    seeds=(1 2 3)
fi
for seed in "${seeds[@]}"; do
    printf '\n-- RINGLOOP_FAULT_SEED=%s --\n' "$seed"
    if ! RINGLOOP_FAULT_SEED="$seed" cargo test --tests; then
        echo "ci/faults.sh: the suite failed under RINGLOOP_FAULT_SEED=$seed" >&2
        exit 1
    fi
done
