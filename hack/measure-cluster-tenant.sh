#!/usr/bin/env bash
# Reproduces the idle memory of a tenant control plane run by the cluster provisioner (a pod of
# the real-node super cluster): starts `vnest up --nodes real --no-tenant --no-syncer`, creates a
# VirtualCluster with --provisioner cluster, waits until it is Running, idles, and prints the
# executable and VmRSS/RssAnon/RssFile (/proc/PID/status) of the control-plane process.
# Needs root and the real-node packages (hack/install-deps.sh).
# Usage: [VNEST=bin/vnest] hack/measure-cluster-tenant.sh [idle-seconds]
set -euo pipefail
vnest=${VNEST:-bin/vnest} idle=${1:-60}
source "$(dirname "$0")/lib/up.sh"
start_up "$vnest" --nodes real --no-tenant --no-syncer
"$vnest" create measure --provisioner cluster --wait --timeout 3m --kubeconfig "$dir/super.kubeconfig"
sleep "$idle"
# The control plane's state directory in its pod (manager stateMountPath) names its process.
found=0
for p in /proc/[0-9]*; do
  cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null || true)
  [[ "$cmd" == *" apiserver "*"/var/lib/vnest"* ]] || continue
  found=1
  printf 'exe=%s idle=%ss ' "$(readlink "$p/exe")" "$idle"
  awk '/^(VmRSS|RssAnon|RssFile):/ {sub(":", "", $1); printf "%s=%.1fMiB ", $1, $2/1024} END {print ""}' "$p/status"
done
[ $found = 1 ] || { echo "no control-plane process found" >&2; exit 1; }
