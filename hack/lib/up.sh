# Sourced by the hack/measure-*.sh scripts. start_up VNEST [FLAG...] runs `VNEST up` with FLAGs
# in a new data directory ($dir, port 19443) and returns once $dir/super.kubeconfig exists; when
# vnest up dies first it prints its log and exits. On exit, vnest up ($up_pid) gets SIGINT and
# the directory is removed once it has stopped.
start_up() {
  local vnest=$1
  shift
  dir=$(mktemp -d /tmp/vnest-measure.XXXX)
  "$vnest" up --data-dir "$dir" --apiserver-port 19443 "$@" >"$dir/up.log" 2>&1 &
  up_pid=$!
  trap stop_up EXIT
  until [ -f "$dir/super.kubeconfig" ]; do
    kill -0 $up_pid 2>/dev/null || { cat "$dir/up.log"; exit 1; }
    sleep 0.2
  done
}

stop_up() {
  kill -INT $up_pid 2>/dev/null || true
  while kill -0 $up_pid 2>/dev/null; do sleep 0.2; done
  rm -rf "$dir"
}
