#!/usr/bin/env bash
# The whole CI: formatting, lints, docs, the test suite on both backends, the suite over the
# fault injector with three seeds, the suite under AddressSanitizer, the syscall-free unit tests
# under miri, the suite on Linux 6.1 under QEMU, and smoke runs of the micro-benchmarks and of
# the comparison benchmark.
# Runs on a fresh 2-core machine with only the Rust toolchain (the nightly steps skip
# themselves when nightly is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets -- -D warnings

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

step "cargo test (every behavioural test runs on io_uring and epoll)"
cargo test

step "doc tests again, forced onto the epoll fallback"
RINGLOOP_BACKEND=epoll cargo test --doc

# Only when the crate has features to turn on (it has none today, so this step is skipped).
if grep -q '^\[features\]' Cargo.toml; then
    step "cargo test --all-features"
    cargo test --all-features
else
    step "cargo test --all-features: SKIPPED (Cargo.toml has no [features] section)"
fi

step "the behavioural suite over the fault injector, three seeds (ci/faults.sh)"
ci/faults.sh

step "the tests under AddressSanitizer + LeakSanitizer (nightly; skipped without it)"
ci/asan.sh

step "the syscall-free unit tests under miri (nightly; skipped without it)"
ci/miri.sh

step "the test binaries under Debian 12's Linux 6.1 in QEMU (the real old-kernel fallbacks)"
ci/old-kernel.sh

step "micro-benchmarks (benches/) built, each run once"
cargo bench -- --test

step "benchmark smoke run"
cargo run --release --example compare -- --quick
