#!/usr/bin/env bash
# Starts libvirtd (with its QEMU driver) by hand, as root, on a Debian 12 machine without systemd
# services: the tests of the libvirt driver need a running qemu:///system.
#
# Idempotent: what exists is kept, a daemon that already answers is left alone. Needs the Debian
# packages libvirt-daemon, libvirt-daemon-driver-qemu and libvirt-clients (tools/install-deps.sh).
# Prints each step it takes; exits non-zero when libvirtd does not answer within 30 s.
set -euo pipefail

readonly URI=qemu:///system
readonly LOG=/var/log/libvirt/vmemfs-libvirtd.log

say() { echo "start-libvirtd: $*"; }

answers() { timeout 10 virsh -c "$URI" list >/dev/null 2>&1; }

if [[ $EUID -ne 0 ]]; then
  echo "start-libvirtd: must run as root" >&2
  exit 1
fi
for tool in libvirtd virtlogd virsh; do
  if ! command -v "$tool" >/dev/null && [[ ! -x /usr/sbin/$tool ]]; then
    echo "start-libvirtd: $tool missing: apt-get install libvirt-daemon" \
      "libvirt-daemon-driver-qemu libvirt-clients" >&2
    exit 1
  fi
done
export PATH=$PATH:/usr/sbin

if answers; then
  say "libvirtd already answers on $URI; nothing to do"
  exit 0
fi

# The Debian build runs QEMU as libvirt-qemu:libvirt-qemu, a member of kvm; the packages that
# would create them (libvirt-daemon-system) also install systemd units we do not want.
for group in kvm libvirt libvirt-qemu; do
  if ! getent group "$group" >/dev/null; then
    groupadd --system "$group"
    say "created group $group"
  fi
done
if ! getent passwd libvirt-qemu >/dev/null; then
  useradd --system --gid libvirt-qemu --groups kvm --home-dir /var/lib/libvirt \
    --no-create-home --shell /usr/sbin/nologin libvirt-qemu
  say "created user libvirt-qemu"
fi

for dir in /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu /run/libvirt; do
  if [[ ! -d $dir ]]; then
    mkdir -p "$dir"
    say "created $dir"
  fi
done

# QEMU in a private mount namespace fails inside chroots and containers ("Failed disable mount
# propagation"); the test domains do not need one.
conf=/etc/libvirt/qemu.conf
if ! grep -qs '^namespaces *= *\[ *\]' "$conf"; then
  mkdir -p /etc/libvirt
  echo 'namespaces = []' >>"$conf"
  say "set namespaces = [] in $conf"
fi

# A pid file whose process is gone would make the daemon refuse to start.
alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

if alive /run/virtlogd.pid; then
  say "virtlogd already running (pid $(cat /run/virtlogd.pid))"
else
  rm -f /run/virtlogd.pid
  virtlogd --daemon
  say "started virtlogd"
fi

if alive /run/libvirtd.pid; then
  say "libvirtd running (pid $(cat /run/libvirtd.pid)) but not answering yet; waiting"
else
  rm -f /run/libvirtd.pid
  libvirtd --daemon >>"$LOG" 2>&1
  say "started libvirtd (log: $LOG)"
fi

for _ in $(seq 1 60); do
  if answers; then
    say "libvirtd answers on $URI (pid $(cat /run/libvirtd.pid 2>/dev/null || echo '?'))"
    exit 0
  fi
  sleep 0.5
done
echo "start-libvirtd: libvirtd does not answer on $URI after 30 s; see $LOG" >&2
exit 1
