#!/usr/bin/env bash
# Installs the Debian packages a real node needs (containerd, runc, CNI
# plugins, iptables, conntrack) plus busybox-static for the busybox image and
# gcc for the race detector of `make test` (cgo).
# Idempotent: does nothing when everything is present. Needs root.
set -euo pipefail

need=()
for pair in containerd:containerd ctr:containerd runc:runc iptables:iptables conntrack:conntrack \
            /usr/lib/cni/bridge:containernetworking-plugins /bin/busybox:busybox-static ip:iproute2 gcc:gcc; do
  tool=${pair%%:*} pkg=${pair##*:}
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "$tool" ]; then
    need+=("$pkg")
  fi
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "hack/install-deps.sh: missing ${need[*]}; run as root to install them (vnest up falls back to simulated nodes)" >&2
  exit 0
fi
echo "hack/install-deps.sh: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
