#!/usr/bin/env bash
# The integration and unit tests under AddressSanitizer (with LeakSanitizer): use-after-free,
# buffer overflows and leaks in the buffers the kernel writes into, the op table and the
# transports show up here as a report and a failed test binary.
#
# Needs a nightly toolchain (-Zsanitizer is unstable). Without one — a fresh machine that
# cannot fetch it — the step is skipped, not failed.
#
# --target is given explicitly so that build scripts and proc-macros (which run on the host
# during the build) are not instrumented; the build goes to its own target dir so it does not
# throw away the normal build. The tests need nothing special under ASan: the fd-counting,
# seccomp, rlimit and re-executed child tests pass as they are (ASan keeps no fd open).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "SKIPPED: no nightly toolchain (ASan needs -Zsanitizer=address)"
    exit 0
fi

target="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/asan"
# detect_leaks is on by default on x86_64 Linux; said here so it stays on.
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
# The runtime's deliberate leaks (memory the kernel may still write after a broken ring), each
# named in the file; an absolute path, since child tests run from other directories.
export LSAN_OPTIONS="suppressions=$PWD/ci/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

cargo +nightly test --target "$target" --tests "$@"
