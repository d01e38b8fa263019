#!/usr/bin/env bash
# Reproduces the figures of the foundation issue: time from `vnest up` to
# super.kubeconfig, and the idle RSS of the whole super cluster (vnest up, its
# children, containerd and shims), summed from /proc/PID/status VmRSS.
# Usage: hack/measure-up.sh real|simulated [idle-seconds]
set -euo pipefail
mode=${1:-simulated} idle=${2:-60}
source "$(dirname "$0")/lib/up.sh"
start=$(date +%s.%N)
start_up bin/vnest --nodes "$mode"
ready=$(date +%s.%N)
printf 'mode=%s start-to-kubeconfig=%.1fs\n' "$mode" "$(echo "$ready - $start" | bc)"
sleep "$idle"
# Every process whose command line names the data dir or its /run/vnest dir, plus vnest up.
total=0 pss=0
for p in /proc/[0-9]*; do
  cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null || true)
  if [ "${p#/proc/}" = "$up_pid" ] || [[ "$cmd" == *"$dir"* ]] || [[ "$cmd" == *"/run/vnest/"* ]]; then
    kb=$(awk '/VmRSS/ {print $2}' "$p/status" 2>/dev/null || echo 0)
    pkb=$(awk '/^Pss:/ {print $2}' "$p/smaps_rollup" 2>/dev/null || echo 0)
    printf '  %-50s rss %5d MiB  pss %5d MiB\n' "${cmd:0:50}" $((kb / 1024)) $((pkb / 1024))
    total=$((total + kb)) pss=$((pss + pkb))
  fi
done
printf 'mode=%s idle after %ss: pss-total=%d MiB (rss-total=%d MiB, double-counts the shared binary)\n' "$mode" "$idle" $((pss / 1024)) $((total / 1024))
