#!/usr/bin/env bash
# The whole CI: formatting, lints, docs, the test suite on both backends, and a quick
# benchmark smoke run. Runs on a fresh 2-core machine with only the Rust toolchain.
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

step "benchmark smoke run"
cargo run --release --example compare -- --quick
