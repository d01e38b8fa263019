#!/usr/bin/env bash
# Installs the Debian packages whose programs the conformance images carry
# (curl, dig, nc and bash go into the agnhost image; see conformance/images.go).
# nginx is not installed: `vnest conformance` unpacks its package with
# apt-get download, which starts no service. Idempotent. Needs root.
set -euo pipefail

need=()
for pair in /usr/bin/curl:curl /usr/bin/dig:bind9-dnsutils /bin/nc.openbsd:netcat-openbsd /bin/bash:bash; do
  tool=${pair%%:*} pkg=${pair##*:}
  [ -x "$tool" ] || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "hack/install-conformance-deps.sh: missing ${need[*]}; run as root to install them" >&2
  exit 1
fi
echo "hack/install-conformance-deps.sh: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
