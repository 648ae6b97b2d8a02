#!/usr/bin/env bash
# The spawn cost on each fallback path: the interleaved benchmark's "mem0"
# section (raw clone+execve, safespawn's Prepared and Command, std's
# Command, all spawning the same no-op program) run under every profile of
# tools/compat-run, so the kernel's own refusals put safespawn on the path
# an older kernel or a container would: clone instead of clone3, the child
# resetting every signal itself, no close_range (the /proc walk, or without
# /proc the ppoll scan), no pidfds (waits by pid). Prints, per profile, the
# medians and the ratios to the raw clone and to std measured in the same
# run. BENCHMARKS.md records a run.
#
#   bash benches/compat-paths.sh            # full sections (about a minute each)
#   bash benches/compat-paths.sh --quick    # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
[ "${1:-}" != --quick ] || quick=(--quick)

json=$(mktemp)
trap 'rm -f "$json"' EXIT
cargo build --release --quiet -p compat-run --message-format=json >"$json"
launcher=$(sed -nE 's/.*"executable":"([^"]+\/compat-run)".*/\1/p' "$json" | tail -n 1)
cargo bench --no-run --quiet --bench interleaved --message-format=json >"$json"
bench=$(sed -nE 's/.*"executable":"([^"]+\/interleaved-[^"]+)".*/\1/p' "$json" | tail -n 1)
[ -x "$launcher" ] && [ -x "$bench" ] || { echo "compat-paths: build failed" >&2; exit 2; }

printf '| profile | path | raw clone (µs) | Prepared (µs) | std (µs) | Prepared / raw | Prepared / std |\n'
printf '|---|---|---|---|---|---|---|\n'
for profile in none 5.4 5.3 4.18 docker-eperm-old-glibc no-proc; do
    case $profile in
        none) path="clone3 + CLONE_CLEAR_SIGHAND + CLONE_PIDFD, close_range(CLOEXEC), waitid(P_PIDFD)" ;;
        5.4) path="clone + CLONE_PIDFD, signals reset by the child, /proc/self/fd walk" ;;
        5.3) path="as 5.4, waitid(P_PID)" ;;
        4.18) path="clone without pidfd (by pid), /proc walk, waitid(P_PID), kill(2)" ;;
        docker-eperm-old-glibc) path="clone + CLONE_PIDFD after clone3 EPERM, /proc walk" ;;
        no-proc) path="clone3, no close_range and no /proc: ppoll scan to RLIMIT_NOFILE" ;;
    esac
    out=$("$launcher" "$profile" -- "$bench" --section mem0 "${quick[@]}" 2>/dev/null) || {
        printf '| %s | %s | (failed) | | | | |\n' "$profile" "$path"
        continue
    }
    # RESULT section method rep n median_us p99_us: the minimum over
    # repetitions of each method's median.
    best() { awk -v m="$1" '$1 == "RESULT" && $3 == m { if (b == "" || $6 < b) b = $6 } END { print b }' <<<"$out"; }
    raw=$(best raw) prep=$(best prepared) std=$(best std)
    awk -v p="$profile" -v path="$path" -v r="$raw" -v s="$prep" -v t="$std" \
        'BEGIN { printf "| %s | %s | %.1f | %.1f | %.1f | %.2f | %.2f |\n", p, path, r, s, t, s / r, s / t }'
done
