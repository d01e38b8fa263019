#!/usr/bin/env bash
# Reproduces the figures of the foundation issue: time from `vnest up` to
# super.kubeconfig, and the idle RSS of the whole super cluster (vnest up, its
# children, containerd and shims), summed from /proc/PID/status VmRSS.
# Usage: hack/measure-up.sh real|simulated [idle-seconds]
set -euo pipefail
mode=${1:-simulated} idle=${2:-60}
dir=$(mktemp -d /tmp/vnest-measure.XXXX)
port=19443
start=$(date +%s.%N)
bin/vnest up --data-dir "$dir" --nodes "$mode" --apiserver-port $port >"$dir/up.log" 2>&1 &
pid=$!
stop() {
  kill -INT $pid 2>/dev/null || true
  while kill -0 $pid 2>/dev/null; do sleep 0.2; done
  rm -rf "$dir"
}
trap stop EXIT
until [ -f "$dir/super.kubeconfig" ]; do
  kill -0 $pid 2>/dev/null || { cat "$dir/up.log"; exit 1; }
  sleep 0.2
done
ready=$(date +%s.%N)
printf 'mode=%s start-to-kubeconfig=%.1fs\n' "$mode" "$(echo "$ready - $start" | bc)"
sleep "$idle"
# Every process whose command line names the data dir or its /run/vnest dir, plus vnest up.
total=0 pss=0
for p in /proc/[0-9]*; do
  cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null || true)
  if [ "${p#/proc/}" = "$pid" ] || [[ "$cmd" == *"$dir"* ]] || [[ "$cmd" == *"/run/vnest/"* ]]; then
    kb=$(awk '/VmRSS/ {print $2}' "$p/status" 2>/dev/null || echo 0)
    pkb=$(awk '/^Pss:/ {print $2}' "$p/smaps_rollup" 2>/dev/null || echo 0)
    printf '  %-50s rss %5d MiB  pss %5d MiB\n' "${cmd:0:50}" $((kb / 1024)) $((pkb / 1024))
    total=$((total + kb)) pss=$((pss + pkb))
  fi
done
printf 'mode=%s idle after %ss: pss-total=%d MiB (rss-total=%d MiB, double-counts the shared binary)\n' "$mode" "$idle" $((pss / 1024)) $((total / 1024))
