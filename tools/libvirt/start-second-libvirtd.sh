#!/usr/bin/env bash
# start-second-libvirtd.sh DIR PORT: a second, test-only libvirtd (QEMU driver) next to the
# machine's own, reachable as qemu+tcp://127.0.0.1:PORT/system WITHOUT AUTHENTICATION (loopback
# only): the "remote host" of the fleet tests and of bench/libvirt_fleet_bench.sh.
#
# A privileged libvirtd has fixed state directories (/run/libvirt, /var/lib/libvirt, ...), so
# this one runs in a private mount namespace where DIR/{run,lib,cache,log,etc} are bind-mounted
# over them: it shares nothing with the machine's libvirtd (sockets, domains, pid files, config),
# and the machine's configuration is never edited. DIR survives the daemon: started again with
# the same DIR (after a kill), it finds its running domains again, as a restarted host would.
# Its own qemu.conf: QEMU's output goes to files (no virtlogd in the namespace), no QEMU mount
# namespaces (they fail in containers). Run as root. Prints the daemon's pid as the last line;
# DIR/run is its /run/libvirt (VMEMFS_LIBVIRT_RUN for define-test-domain.sh).
# Stop with: kill PID (its domains keep running); stop-second-libvirtd.sh DIR stops everything.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 DIR PORT" >&2
  exit 2
fi
readonly DIR=$1 PORT=$2
[[ $PORT =~ ^[0-9]{2,5}$ ]] || { echo "bad PORT: $PORT" >&2; exit 2; }
[[ $EUID -eq 0 ]] || { echo "$0: must run as root" >&2; exit 1; }
export PATH=$PATH:/usr/sbin
readonly URI=qemu+tcp://127.0.0.1:$PORT/system

mkdir -p "$DIR"/{run,lib/qemu,cache/qemu,log/qemu,etc}
cat >"$DIR/etc/libvirtd.conf" <<CONF
# test-only: plain TCP on loopback, no authentication
listen_tls = 0
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "$PORT"
auth_tcp = "none"
auth_unix_rw = "none"
CONF
cat >"$DIR/etc/qemu.conf" <<CONF
namespaces = [ ]
stdio_handler = "file"
CONF
cp /etc/libvirt/libvirt.conf "$DIR/etc/" 2>/dev/null || true
# The machine's QEMU capabilities, if probed already: probing QEMU anew takes a minute on a busy
# machine (libvirt checks that they still match the binaries before using them).
[[ -d $DIR/cache/qemu/capabilities ]] ||
  cp -a /var/cache/libvirt/qemu/capabilities "$DIR/cache/qemu/" 2>/dev/null || true

# Another daemon already on PORT (or this DIR's own, still up) would make this one exit.
if timeout 5 virsh -c "$URI" version >/dev/null 2>&1; then
  echo "$0: something already answers on $URI" >&2
  exit 1
fi
# A private mount namespace needs / to be a mount point; in a chroot it is not (unshare: "cannot
# change root filesystem propagation"). Bind mounts made without it could leak to the machine's
# namespace, so there is no second daemon then: exit 77, which the tests report as a skip.
if ! unshare --mount --propagation private true 2>/dev/null; then
  echo "$0: no private mount namespace here (is / a chroot, not a mount point?)" >&2
  exit 77
fi
rm -f "$DIR/libvirtd.pid"
unshare --mount --propagation private bash -c '
  d=$1
  for pair in run:/run/libvirt lib:/var/lib/libvirt cache:/var/cache/libvirt \
              log:/var/log/libvirt etc:/etc/libvirt; do
    mkdir -p "${pair#*:}"
    mount --bind "$d/${pair%%:*}" "${pair#*:}"
  done
  exec libvirtd --daemon --listen --config /etc/libvirt/libvirtd.conf \
    --pid-file "$d/libvirtd.pid"
' _ "$(cd "$DIR" && pwd)" >>"$DIR/libvirtd.out" 2>&1

for _ in $(seq 1 60); do
  if timeout 5 virsh -c "$URI" list >/dev/null 2>&1; then
    echo "start-second-libvirtd: answers on $URI" >&2
    cat "$DIR/libvirtd.pid"
    exit 0
  fi
  sleep 0.5
done
echo "start-second-libvirtd: no answer on $URI after 30 s; see $DIR/libvirtd.out" >&2
exit 1
