#!/usr/bin/env bash
# The unit tests of the parts that need no syscalls, under miri: owned buffers and slices
# (src/buf), the user-space buffer pool (src/buf/ring.rs), the op table (src/driver/token.rs),
# the timer heap (src/runtime/timer.rs), the coalescing controller (src/driver/coalesce.rs) and
# the wait list of the sync primitives (src/sync/wait_list.rs).
# Miri checks their unsafe code and raw pointers for undefined behaviour and leaks.
#
# Everything that talks to the kernel (rings, epoll, sockets, the integration tests) is left
# out: miri cannot run io_uring. Needs a nightly toolchain with the miri and rust-src
# components; without them (a fresh machine that cannot fetch them) the step is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "SKIPPED: no nightly toolchain (miri needs nightly)"
    exit 0
fi
if ! rustup component add miri rust-src --toolchain nightly >/dev/null 2>&1 &&
    ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "SKIPPED: the miri and rust-src components cannot be added to the nightly toolchain"
    exit 0
fi

cargo +nightly miri setup

# libtest runs the tests whose path contains any of these filters.
cargo +nightly miri test --lib -- \
    buf::tests:: \
    buf::ring::tests:: \
    driver::token::tests:: \
    driver::coalesce::tests:: \
    runtime::timer::tests:: \
    sync::wait_list::tests:: \
    "$@"
