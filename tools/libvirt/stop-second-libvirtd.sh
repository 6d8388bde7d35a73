#!/usr/bin/env bash
# stop-second-libvirtd.sh DIR PORT: undoes start-second-libvirtd.sh DIR PORT. Destroys its
# domains (through the daemon if it answers, else by killing the QEMU processes whose pid files
# it left in DIR/run/qemu), then stops the daemon. Idempotent.
set -uo pipefail
readonly DIR=$1 PORT=$2
export PATH=$PATH:/usr/sbin
readonly URI=qemu+tcp://127.0.0.1:$PORT/system
if timeout 5 virsh -c "$URI" list >/dev/null 2>&1; then
  for dom in $(timeout 10 virsh -c "$URI" list --all --name); do
    timeout 10 virsh -c "$URI" destroy "$dom" >/dev/null 2>&1
    timeout 10 virsh -c "$URI" undefine "$dom" >/dev/null 2>&1
  done
fi
for f in "$DIR"/run/qemu/*.pid; do
  [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null
done
pid=$(cat "$DIR/libvirtd.pid" 2>/dev/null || true)
if [[ -n $pid ]] && kill "$pid" 2>/dev/null; then
  for _ in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
fi
exit 0
