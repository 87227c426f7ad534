#!/usr/bin/env bash
# The whole CI: formatting, lints, docs, the test suite on both backends, the suite over the
# fault injector with three seeds, the suite under AddressSanitizer, the syscall-free unit tests
# under miri, the suite on Linux 6.1 under QEMU, and smoke runs of the micro-benchmarks and of
# the comparison benchmark.
# Runs on a fresh 2-core machine with only the Rust toolchain (the nightly steps skip
# themselves when nightly is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says when it starts, so a log shows where the run's time went.
step() { printf '\n== %s == (at %d s)\n' "$*" "$SECONDS"; }

step "tools the tests use beyond the Rust toolchain"
# The TLS interop tests (tests/tls_interop.rs) run Python's ssl module and `openssl s_client`
# as peers ringloop did not write. python3 is on the machine; openssl may not be.
command -v python3 >/dev/null || { echo "python3 is required by tests/tls_interop.rs"; exit 1; }
if ! command -v openssl >/dev/null; then
    apt-get update -qq >/dev/null && apt-get install -y -qq openssl >/dev/null
fi
openssl version

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets -- -D warnings

step "cargo clippy --no-default-features (ringloop without TLS builds, tests included)"
cargo clippy --no-default-features --all-targets -- -D warnings
step "cargo clippy --all-features (every feature: tls, tokio-io, hyper)"
cargo clippy --all-features --all-targets -- -D warnings

# Tests, examples and benches turn `hyper` and `tokio-io` on (ringloop's dev-dependency on
# itself, for examples/compare), so the steps above never build the library without them:
# these do, once per feature set a user can pick.
step "cargo clippy --lib for each feature set (no dev-dependencies, so no feature unification)"
for features in "" "--no-default-features" "--no-default-features --features tokio-io" \
    "--no-default-features --features hyper" "--features hyper"; do
    echo "-- cargo clippy --lib $features"
    # shellcheck disable=SC2086
    cargo clippy --lib $features -- -D warnings
done

step "cargo doc (default and all features)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features

step "cargo test (every behavioural test runs on io_uring and epoll)"
cargo test

step "doc tests again, forced onto the epoll fallback"
RINGLOOP_BACKEND=epoll cargo test --doc

# Every feature on (today `tls`, also a default one, and `tokio-io`).
step "cargo test --all-features"
cargo test --all-features

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

echo "ci/run.sh: every step passed in $SECONDS s"
