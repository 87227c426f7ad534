#!/usr/bin/env bash
# Runs the test binaries, built here on the host, under Debian 12's Linux 6.1 booted in QEMU.
#
# Usage:
#   ci/old-kernel.sh                   # every test binary
#   ci/old-kernel.sh signal_stream tasks   # only the named test binaries
#
# Environment:
#   OLD_KERNEL_ACCEL=auto|kvm|tcg   auto (default) tries KVM once per host kernel, remembers
#                                   whether it booted, and otherwise uses TCG (software CPU).
#   OLD_KERNEL_CACHE=DIR            where the kernel and the KVM verdict are kept
#                                   (default: ~/.cache/ringloop-old-kernel).
#   OLD_KERNEL_BIN_TIMEOUT=SECS     per test binary (default 300); a binary that runs longer is
#                                   killed and counted as ended without a result line.
#   OLD_KERNEL_THREADS=N            --test-threads inside the VM (default 2).
#   OLD_KERNEL_TEST_ARGS="..."      more arguments for every test binary (a test name filter,
#                                   --nocapture, ...).
#
# What it does: installs what is missing (qemu-system-x86, kmod, busybox-static from apt;
# virtme-ng from pip), downloads Debian's linux-image-6.1.0-*-amd64 package once and unpacks it
# (with its modules: virtio and 9p are modules in Debian's kernel) into the cache, builds the
# test binaries (`cargo test --no-run`) and the `backend` example, then boots the kernel with
# virtme-ng over the host's root filesystem (read-only; the run directory under
# target/old-kernel/ is shared read-write) and runs each binary there under a timeout.
#
# It prints the guest's `uname -r`, the backend report on that kernel, each binary's totals
# and failing tests, and ends with `N passed, N failed` alone on a line. It exits non-zero if a
# test failed, a binary ended without a result line (crash or hang), or the VM did not finish.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

accel=${OLD_KERNEL_ACCEL:-auto}
cache=${OLD_KERNEL_CACHE:-${HOME:-/root}/.cache/ringloop-old-kernel}
bin_timeout=${OLD_KERNEL_BIN_TIMEOUT:-300}
threads=${OLD_KERNEL_THREADS:-2}
test_args=${OLD_KERNEL_TEST_ARGS:-}
only=("$@")

step() { printf '\n== %s ==\n' "$*" >&2; }
die() {
    printf 'old-kernel: %s\n' "$*" >&2
    exit 2
}

# --- tools -----------------------------------------------------------------------------------
apt_updated=0
apt_update_once() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq >/dev/null
        apt_updated=1
    fi
}
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v depmod >/dev/null || missing+=(kmod)
command -v busybox >/dev/null || missing+=(busybox-static)
command -v file >/dev/null || missing+=(file)
if [ ${#missing[@]} -gt 0 ]; then
    step "apt-get install ${missing[*]}"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v vng >/dev/null; then
    step "pip install virtme-ng"
    python3 -m pip install -q virtme-ng
    command -v pyenv >/dev/null && pyenv rehash
    hash -r
    command -v vng >/dev/null || die "virtme-ng installed but 'vng' is not on PATH"
fi

# --- kernel ----------------------------------------------------------------------------------
kimg=$(ls "$cache"/root/boot/vmlinuz-6.1.* 2>/dev/null | head -n1 || true)
if [ -z "$kimg" ]; then
    step "downloading Debian's Linux 6.1 kernel package"
    apt_update_once
    # linux-image-amd64 on bookworm depends on the current linux-image-6.1.0-N-amd64.
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6\.1\./ { print $2; exit }')
    [ -n "$pkg" ] || die "apt has no linux-image-6.1.0-*-amd64 (is this Debian 12 with bookworm sources?)"
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null)
    rm -rf "$cache/root.new"
    mkdir -p "$cache/root.new"
    dpkg-deb -x "$tmp"/"$pkg"_*.deb "$cache/root.new"
    rm -rf "$tmp" "$cache/root"
    mv "$cache/root.new" "$cache/root"
    kimg=$(ls "$cache"/root/boot/vmlinuz-6.1.* | head -n1)
fi

# --- accelerator -----------------------------------------------------------------------------
# Nested KVM on some hosts rejects the guest's MSRs (QEMU aborts) or hangs early in boot, so KVM
# is tried once per host kernel, under a timeout, and the verdict is kept.
vng_base=(vng -v -r "$kimg" --cpus 2 --memory 2G)
kvm_verdict="$cache/kvm-$(uname -r)"
if [ "$accel" = auto ]; then
    if [ ! -e "$kvm_verdict" ]; then
        if [ -w /dev/kvm ]; then
            step "probing KVM (once; verdict kept in $kvm_verdict)"
            probe=$(mktemp -d)
            timeout -k 5 60 "${vng_base[@]}" --rwdir "$probe" --exec "touch $probe/booted" \
                >"$probe/log" 2>&1 </dev/null || true
            if [ -e "$probe/booted" ]; then
                echo kvm >"$kvm_verdict"
            else
                echo tcg >"$kvm_verdict"
            fi
            rm -rf "$probe"
        else
            echo tcg >"$kvm_verdict"
        fi
    fi
    accel=$(cat "$kvm_verdict")
fi
# The tests' watchdogs and waits stretch by this factor (tests/support: RINGLOOP_TEST_TIME_SCALE):
# under TCG a test that takes 0.3 s on the host took 59 s of its 60 s watchdog.
case "$accel" in
kvm) vng_accel=() time_scale=${RINGLOOP_TEST_TIME_SCALE:-2} ;;
tcg) vng_accel=(--disable-kvm) time_scale=${RINGLOOP_TEST_TIME_SCALE:-10} ;;
*) die "OLD_KERNEL_ACCEL must be auto, kvm or tcg (was '$accel')" ;;
esac

# --- build -----------------------------------------------------------------------------------
step "cargo test --no-run (host)"
run_dir="$repo/target/old-kernel/run"
rm -rf "$run_dir"
mkdir -p "$run_dir/logs"
cargo test --no-run --message-format=json 2>"$run_dir/build.log" | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["executable"])
' | sort >"$run_dir/binaries.all" || {
    tail -n 30 "$run_dir/build.log" >&2
    die "cargo test --no-run failed"
}
cargo build --quiet --example backend
if [ ${#only[@]} -gt 0 ]; then
    for name in "${only[@]}"; do
        grep -E "^$name " "$run_dir/binaries.all" || die "no test binary named '$name'"
    done | sort -u >"$run_dir/binaries"
else
    cp "$run_dir/binaries.all" "$run_dir/binaries"
fi
[ -s "$run_dir/binaries" ] || die "no test binaries found"
# The guest runs copies, so a rebuild on the host during a long TCG run cannot swap a binary
# under it.
mkdir -p "$run_dir/bin"
while read -r name exe; do
    cp "$exe" "$run_dir/bin/$name"
    echo "$name $run_dir/bin/$name"
done <"$run_dir/binaries" >"$run_dir/binaries.copied"
mv "$run_dir/binaries.copied" "$run_dir/binaries"
cp target/debug/examples/backend "$run_dir/bin/backend-example"

# --- guest -----------------------------------------------------------------------------------
cat >"$run_dir/guest.sh" <<'GUEST'
#!/bin/bash
# Runs inside the VM. $1 = run dir (shared read-write), $2 = repo, $3 = timeout, $4 = threads,
# $5 = the tests' time scale; the file test-args holds more arguments for each binary.
run=$1 repo=$2 limit=$3 threads=$4
export RINGLOOP_TEST_TIME_SCALE=$5
read -r -a extra <"$run/test-args"
exec >>"$run/progress" 2>&1
# The guest's init leaves a console fd open (fd 3 -> /dev/ttyS0); tests that count open fds
# must not inherit it.
for fd in 3 4 5 6 7 8 9; do
    [ -e "/proc/self/fd/$fd" ] && eval "exec $fd>&-"
done
# Tests put sockets and scratch files under temp_dir(); give them a tmpfs.
mkdir -p /run/ok-tmp && mount -t tmpfs tmpfs /run/ok-tmp && export TMPDIR=/run/ok-tmp
ulimit -l unlimited 2>/dev/null
cd "$repo" || exit 1
echo "guest kernel: $(uname -r)"
uname -r >"$run/uname"
for b in auto epoll; do
    echo "-- backend report (RINGLOOP_BACKEND=$b) --"
    RINGLOOP_BACKEND=$b timeout 30 "$run/bin/backend-example" 2>&1 | tee "$run/backend-$b.txt"
done
while read -r name exe; do
    start=$(date +%s)
    timeout -k 10 "$limit" "$exe" --test-threads="$threads" "${extra[@]}" >"$run/logs/$name.log" 2>&1 </dev/null
    rc=$?
    echo "$name rc=$rc $(($(date +%s) - start))s" | tee -a "$run/rcs"
done <"$run/binaries"
echo done >"$run/finished"
GUEST

step "booting $(basename "$kimg") under QEMU ($accel), $(wc -l <"$run_dir/binaries") test binaries, time scale $time_scale"
vm_timeout=$((bin_timeout * $(wc -l <"$run_dir/binaries") + 120))
start=$(date +%s)
touch "$run_dir/progress"
printf '%s\n' "$test_args" >"$run_dir/test-args"
timeout -k 10 "$vm_timeout" "${vng_base[@]}" "${vng_accel[@]}" --rwdir "$run_dir" --cwd "$repo" \
    --exec "bash $run_dir/guest.sh $run_dir $repo $bin_timeout $threads $time_scale" \
    >"$run_dir/vm.log" 2>&1 </dev/null &
vm=$!
tail -n +1 -F --pid="$vm" "$run_dir/progress" 2>/dev/null || true
wait "$vm" || true
echo "VM ran $(($(date +%s) - start)) s (log: $run_dir/vm.log)" >&2

# --- summary ---------------------------------------------------------------------------------
step "results on Linux $(cat "$run_dir/uname" 2>/dev/null || echo '?')"
total_pass=0 total_fail=0 broken=0
while read -r name exe; do
    log="$run_dir/logs/$name.log"
    rc=$(awk -v n="$name" '$1 == n { sub("rc=", "", $2); print $2 }' "$run_dir/rcs" 2>/dev/null)
    if [ -e "$log" ] && grep -q '^test result: ' "$log" && [ "${rc:-x}" != 124 ] && [ "${rc:-x}" != 137 ]; then
        # Child-process tests re-run this binary and their output is echoed into the parent's
        # failure messages, so only the last result line is the binary's own.
        pass=$(awk '/^test result: / { s = $4 } END { print s + 0 }' "$log")
        fail=$(awk '/^test result: / { s = $6 } END { print s + 0 }' "$log")
        total_pass=$((total_pass + pass))
        total_fail=$((total_fail + fail))
        printf '%-32s %4d passed, %d failed\n' "$name" "$pass" "$fail"
        grep -E '^test .* \.\.\. FAILED$' "$log" | sed 's/^test /    FAILED: /; s/ \.\.\. FAILED$//' | sort -u || true
    else
        broken=$((broken + 1))
        case "${rc:-}" in
        124 | 137) why="timed out after ${bin_timeout}s" ;;
        "") why="never ran (VM stopped first)" ;;
        *) why="exit $rc" ;;
        esac
        printf '%-32s NO RESULT LINE (%s); last lines of %s:\n' "$name" "$why" "$log"
        tail -n 5 "$log" 2>/dev/null | sed 's/^/    /' || true
    fi
done <"$run_dir/binaries"
[ -e "$run_dir/finished" ] || echo "the VM did not finish its run (see $run_dir/vm.log)"
echo "binaries without a result line: $broken"
echo "$total_pass passed, $total_fail failed"
if [ "$total_fail" -gt 0 ] || [ "$broken" -gt 0 ] || [ ! -e "$run_dir/finished" ]; then
    exit 1
fi
