#!/usr/bin/env bash
# Old build against new build in one run: is any workload slower than before a change?
#
# Usage: ci/compare-revs.sh OLD_REV [NEW_REV] [--rounds N] [--quick] [--filter NAME] [--threshold PCT]
#
#   OLD_REV          any git revision (a sha, a branch, HEAD~1, a tag)
#   NEW_REV          default: the working tree as it is, uncommitted changes included
#   --rounds N       invocations of each build, alternating old, new, old, new, ... (default 3)
#   --quick          passed to every compare invocation (3 inner rounds, small counts)
#   --filter NAME    passed to every compare invocation (only the workloads whose name contains NAME)
#   --threshold PCT  flag a row where new is worse by more than PCT percent (default 5)
#
# Builds `cargo build --release --example compare` at each revision (a committed revision in a
# temporary `git worktree` under target/compare-revs/, all revisions sharing the target dir
# target/compare-revs/target so only what changed is rebuilt; a revision's binary is kept in
# target/compare-revs/bin/<sha>/ and reused; `rm -rf target/compare-revs` forgets them), runs
# the two binaries alternately so machine noise hits both alike, each writing its own `--json`,
# then prints, per (workload, unit, runtime) present in both, the median over the rounds of each
# build's medians and ratio = how many times better new is (above 1.00x: new is better, in the
# record's `better` direction). Rows where ratio < 1 - PCT/100 are marked `<< worse`. Only the
# ringloop rows are the verdict; the tokio, monoio and raw rows do not depend on ringloop's code
# and are printed apart as the noise check: their ratios should sit near 1.00x, and one that moved
# by more than PCT is marked `<< noise` (then trust the verdict less: more rounds, no --quick).
# Older revisions' JSON (side metrics as fields, the stream in MiB/s) is read as today's.
#
# Exit status: 0 whenever the report is printed, whatever it says (it is a report, not a gate);
# 1 on a bad argument, a failed build, or when a build produced no results at all.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

usage() { sed -n '4,11s/^# \{0,1\}//p' "$0" >&2; }
die() { echo "ci/compare-revs.sh: $*" >&2; exit 1; }

revs=()
rounds=3
threshold=5
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) [ $# -ge 2 ] || die "--rounds needs a value"; rounds=$2; shift 2 ;;
        --rounds=*) rounds=${1#*=}; shift ;;
        --threshold) [ $# -ge 2 ] || die "--threshold needs a value"; threshold=$2; shift 2 ;;
        --threshold=*) threshold=${1#*=}; shift ;;
        --quick) pass+=(--quick); shift ;;
        --filter) [ $# -ge 2 ] || die "--filter needs a value"; pass+=(--filter "$2"); shift 2 ;;
        --filter=*) pass+=(--filter "${1#*=}"); shift ;;
        -h|--help) usage; exit 0 ;;
        -*) usage; die "unknown option $1" ;;
        *) revs+=("$1"); shift ;;
    esac
done
[ ${#revs[@]} -ge 1 ] && [ ${#revs[@]} -le 2 ] || { usage; die "give OLD_REV and optionally NEW_REV"; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, not '$rounds'"
[[ "$threshold" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--threshold must be a number of percent, not '$threshold'"

cache="$repo/target/compare-revs"
mkdir -p "$cache/bin"

# Builds the compare example at a committed revision (once per sha); prints the binary's path.
build_rev() {
    local sha=$1 bin="$cache/bin/$1/compare"
    if [ -x "$bin" ]; then
        echo "reusing $bin" >&2
    else
        local tree="$cache/$sha"
        git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
        git worktree add --detach "$tree" "$sha" >&2
        # First use: start from the tree's release build, so the dependencies are already built.
        if [ ! -d "$cache/target/release" ] && [ -d target/release ]; then
            mkdir -p "$cache/target"
            cp -a target/release "$cache/target/release"
        fi
        echo "building compare at ${sha:0:12} (target dir $cache/target) ..." >&2
        if ! (cd "$tree" && CARGO_TARGET_DIR="$cache/target" cargo build --release --example compare) >&2; then
            git worktree remove --force "$tree"
            die "building compare at $sha failed"
        fi
        mkdir -p "$(dirname "$bin")"
        cp "$cache/target/release/examples/compare" "$bin"
        git worktree remove --force "$tree"
    fi
    echo "$bin"
}

# Builds the compare example of the working tree; prints the binary's path (copied, so a later
# build of the tree cannot change it under the run).
build_tree() {
    echo "building compare in the working tree ..." >&2
    cargo build --release --example compare >&2 || die "building compare in the working tree failed"
    local bin="$cache/bin/worktree/compare"
    mkdir -p "$(dirname "$bin")"
    cp target/release/examples/compare "$bin"
    echo "$bin"
}

old_sha=$(git rev-parse --verify -q "${revs[0]}^{commit}") || die "unknown revision ${revs[0]}"
old_label="${revs[0]} (${old_sha:0:12})"
old_bin=$(build_rev "$old_sha")
if [ ${#revs[@]} -eq 2 ]; then
    new_sha=$(git rev-parse --verify -q "${revs[1]}^{commit}") || die "unknown revision ${revs[1]}"
    new_label="${revs[1]} (${new_sha:0:12})"
    new_bin=$(build_rev "$new_sha")
else
    new_label="working tree (HEAD $(git rev-parse --short=12 HEAD)"
    if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
        new_label+=" + uncommitted changes"
    fi
    new_label+=")"
    new_bin=$(build_tree)
fi

runs="$cache/runs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$runs"
for round in $(seq 1 "$rounds"); do
    for side in old new; do
        if [ $side = old ]; then bin=$old_bin; else bin=$new_bin; fi
        out="$runs/$side-$round"
        printf 'round %s/%s: %s ... ' "$round" "$rounds" "$side" >&2
        start=$(date +%s%N)
        if "$bin" "${pass[@]}" --json "$out.json" >"$out.log" 2>&1; then
            echo "$(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
        else
            echo "FAILED (exit $?, see $out.log); this run is left out" >&2
            rm -f "$out.json"
        fi
    done
done

status=0
python3 - "$runs" "$threshold" "$old_label" "$new_label" <<'PY' || status=$?
import glob, json, math, os, statistics, sys

runs, threshold, old_label, new_label = sys.argv[1:5]
limit = 1 - float(threshold) / 100

# Units that are better higher when a record does not say (every other unit is better lower).
HIGHER = {"Mops/s", "req/s", "bytes/s"}
# Revisions before the one-line-per-metric JSON carried the networking side metrics as fields
# of the main record, and measured the stream in MiB/s; their records are rewritten as the
# current JSON has them, so the two builds still meet on the same keys.
LEGACY = {"us_per_unit": "us/req", "kib_per_conn": "KiB/conn", "enters_per_unit": "enters/req"}


def records(path):
    text = open(path).read()
    try:
        data = json.loads(text)
    except ValueError:
        data = [json.loads(l.strip().rstrip(",")) for l in text.splitlines() if l.strip().startswith("{")]
    for r in data if isinstance(data, list) else [data]:
        if r.get("unit") == "MiB/s" and isinstance(r.get("median"), (int, float)):
            r = dict(r, unit="bytes/s", median=r["median"] * 1024 * 1024)
        yield r
        net = r.get("unit") in ("req/s", "bytes/s")
        for field, unit in LEGACY.items():
            if r.get(field) is not None:
                if field == "enters_per_unit" and not net:
                    unit = "enters/unit"
                yield {"workload": r["workload"], "runtime": r["runtime"], "unit": unit,
                       "better": "lower", "median": r[field]}


def collect(side):
    """(workload, unit, runtime) -> (better, [one median per round]), in first-seen order."""
    rows, files = {}, sorted(glob.glob(os.path.join(runs, side + "-*.json")))
    for path in files:
        for r in records(path):
            if not isinstance(r.get("median"), (int, float)):
                continue
            key = (r["workload"], r["unit"], r["runtime"])
            better = r.get("better") or ("higher" if r["unit"] in HIGHER else "lower")
            rows.setdefault(key, (better, []))[1].append(float(r["median"]))
    return rows, len(files)


old, old_files = collect("old")
new, new_files = collect("new")
if not old or not new:
    sys.exit(f"no results from the {'old' if not old else 'new'} build (see the logs in {runs})")


def ratio(better, o, n):
    """How many times better new is than old: above 1 better, whichever way `better` points."""
    if o == n:
        return 1.0
    num, den = (n, o) if better == "higher" else (o, n)
    return math.inf if den == 0 else num / den


def fmt(v):
    if v == 0:
        return "0"
    if abs(v) >= 1e6:  # as the compare table prints them: 1.61e9
        exponent = math.floor(math.log10(abs(v)))
        return f"{v / 10 ** exponent:.3g}e{exponent}"
    return f"{v:.4g}" if abs(v) >= 1 else f"{v:.3f}"


def table(title, keys, verdict):
    print(f"\n{title}")
    print(f"{'workload':<24} {'unit':<12} {'runtime':<18} {'old':>10} {'new':>10} {'ratio':>8}")
    worse = []
    for key in keys:
        better = old[key][0]
        o = statistics.median(old[key][1])
        n = statistics.median(new[key][1])
        r = ratio(better, o, n)
        mark = ""
        if verdict and r < limit:
            mark = "  << worse"
            worse.append(key)
        elif not verdict and not limit <= r <= 1 / limit:
            mark = "  << noise"
        shown = "inf" if math.isinf(r) else f"{r:.2f}x"
        print(f"{key[0]:<24} {key[1]:<12} {key[2]:<18} {fmt(o):>10} {fmt(n):>10} {shown:>8}{mark}")
    return worse


both = [k for k in old if k in new]
ours = [k for k in both if k[2].startswith("ringloop")]
others = [k for k in both if not k[2].startswith("ringloop")]
print(f"\nold: {old_label}, {old_files} run(s)")
print(f"new: {new_label}, {new_files} run(s)")
print("Each cell is the median over the runs of that build's per-run medians. ratio = how many times")
print("better new is than old (new/old where higher is better, old/new where lower is better);")
print(f"`<< worse` where ratio < {limit:.2f}x (new worse by more than {threshold} %); `<< noise` where a")
print(f"runtime that does not use ringloop's code moved by as much (ratio outside {limit:.2f}x .. {1 / limit:.2f}x).")
worse = table("ringloop (the verdict)", ours, True)
table("tokio, monoio, raw (noise check: these do not use ringloop's code, ratios should be ~1.00x)",
      others, False)
spread = [ratio(old[k][0], statistics.median(old[k][1]), statistics.median(new[k][1])) for k in others]
spread = [r for r in spread if not math.isinf(r)]
noisy = sum(not limit <= r <= 1 / limit for r in spread)
if spread:
    print(f"noise: the non-ringloop ratios span {min(spread):.2f}x .. {max(spread):.2f}x")
for side, rows in (("old", old), ("new", new)):
    only = [k for k in rows if k not in (new if side == "old" else old)]
    if only:
        print(f"only in {side} (not compared): " + ", ".join("/".join(k) for k in only))
if worse:
    print(f"\nverdict: {len(worse)} ringloop row(s) worse by more than {threshold} %: "
          + ", ".join(f"{w} {u} {rt}" for w, u, rt in worse))
else:
    print(f"\nverdict: no ringloop row is worse by more than {threshold} % ({len(ours)} compared)")
if noisy:
    print(f"({noisy} noise-check row(s) moved by more than {threshold} % too: the machine was noisy;"
          " more rounds, without --quick, give a verdict to trust)")
PY
echo "raw results (one --json file and one log per run): $runs"
exit $status
