#!/usr/bin/env bash
# define-test-domain.sh NAME CPU [EXTRA]: starts a transient libvirt domain NAME (type='qemu', TCG)
# that boots the test guest of tools/guest (kernel + initramfs of $VMEMFS_GUEST_IMAGE, default
# /tmp/vmemfs-guests/image) the way `guest.py boot` does: q35, 2 vCPUs, 256 MiB, -cpu CPU
# (qemu64 or max), kernel command line `console=ttyS0 panic=-1 vmemfs.extra=EXTRA`, ttyS0 into
# DIR/console.log and the ground truth (ttyS1) into DIR/truth.log, DIR=$VMEMFS_LIBVIRT_DIR/NAME
# (default /tmp/vmemfs-libvirt/NAME).
#
# Lifecycle: a reset or reboot destroys the domain (on_reboot=destroy: a panicking guest stops
# instead of looping) unless VMEMFS_ON_REBOOT=restart asks for libvirt's default, a domain that
# reboots; a guest crash reported through the pvpanic device (ISA port 0x505) destroys it
# unless VMEMFS_ON_CRASH is preserve (the crashed guest stays, paused) or restart.
#
# Waits (at most $VMEMFS_BOOT_TIMEOUT s, default 180) for ==VMEMFS-READY== on ttyS1, unless
# VMEMFS_BOOT_WAIT=0 (then returns once QEMU runs), and prints the QEMU pid as the last line of
# stdout. Transient: `virsh destroy` (undefine-test-domain.sh)
# removes it entirely. A running domain of the same name is destroyed first.
#
# QEMU runs as root without relabelling (a static DAC seclabel), so libvirt never chowns the
# shared image that tools/guest's own guests also use.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 NAME qemu64|max [EXTRA]" >&2
  exit 2
fi
readonly NAME=$1 CPU=$2 EXTRA=${3:-0}
readonly URI=${VMEMFS_LIBVIRT_URI:-qemu:///system}
readonly IMAGE=${VMEMFS_GUEST_IMAGE:-/tmp/vmemfs-guests/image}
readonly DIR=${VMEMFS_LIBVIRT_DIR:-/tmp/vmemfs-libvirt}/$NAME
readonly TIMEOUT=${VMEMFS_BOOT_TIMEOUT:-180}
readonly ON_REBOOT=${VMEMFS_ON_REBOOT:-destroy}
readonly ON_CRASH=${VMEMFS_ON_CRASH:-destroy}
readonly HERE=$(cd "$(dirname "$0")" && pwd)

say() { echo "define-test-domain: $*" >&2; }

[[ $NAME =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || { say "bad domain name: $NAME"; exit 2; }
[[ $EXTRA =~ ^[0-9]{1,5}$ ]] || { say "bad EXTRA: $EXTRA"; exit 2; }
case $CPU in
  qemu64) cpu_xml="<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>" ;;
  max) cpu_xml="<cpu mode='maximum' check='none'/>" ;;
  *) say "CPU must be qemu64 or max, not $CPU"; exit 2 ;;
esac
[[ $ON_REBOOT == destroy || $ON_REBOOT == restart ]] ||
  { say "VMEMFS_ON_REBOOT must be destroy or restart, not $ON_REBOOT"; exit 2; }
[[ $ON_CRASH == destroy || $ON_CRASH == preserve || $ON_CRASH == restart ]] ||
  { say "VMEMFS_ON_CRASH must be destroy, preserve or restart, not $ON_CRASH"; exit 2; }

if [[ ! -f $IMAGE/initramfs.cpio.gz || ! -f $IMAGE/vmlinuz ]]; then
  say "building the guest image in $IMAGE"
  "$HERE/../guest/build-guest.sh" "$IMAGE" >&2
fi

if virsh -c "$URI" domstate "$NAME" >/dev/null 2>&1; then
  say "destroying the running domain $NAME first"
  virsh -c "$URI" destroy "$NAME" >/dev/null 2>&1 || true
  virsh -c "$URI" undefine "$NAME" >/dev/null 2>&1 || true
fi

mkdir -p "$DIR"
rm -f "$DIR/console.log" "$DIR/truth.log"
cat >"$DIR/domain.xml" <<XML
<domain type='qemu'>
  <name>$NAME</name>
  <memory unit='MiB'>256</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$IMAGE/vmlinuz</kernel>
    <initrd>$IMAGE/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 panic=-1 vmemfs.extra=$EXTRA</cmdline>
  </os>
  $cpu_xml
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>$ON_REBOOT</on_reboot>
  <on_crash>$ON_CRASH</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='file'><source path='$DIR/console.log'/><target port='0'/></serial>
    <serial type='file'><source path='$DIR/truth.log'/><target port='1'/></serial>
    <controller type='usb' model='none'/>
    <panic model='isa'><address type='isa' iobase='0x505'/></panic>
    <memballoon model='none'/>
    <video><model type='none'/></video>
  </devices>
  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
</domain>
XML

start=$SECONDS
virsh -c "$URI" create "$DIR/domain.xml" >&2
pid=$(cat "/run/libvirt/qemu/$NAME.pid")
if [[ ${VMEMFS_BOOT_WAIT:-1} == 0 ]]; then
  say "domain $NAME started (QEMU pid $pid); not waiting for it to boot"
  echo "$pid"
  exit 0
fi
say "domain $NAME started (QEMU pid $pid); waiting for ==VMEMFS-READY== in $DIR/truth.log"
while ! grep -q '==VMEMFS-READY==' "$DIR/truth.log" 2>/dev/null; do
  state=$(virsh -c "$URI" domstate "$NAME" 2>/dev/null || true)
  if [[ $state != running* ]]; then
    say "domain $NAME stopped while booting; console tail:"
    tail -n 20 "$DIR/console.log" >&2 || true
    exit 1
  fi
  if ((SECONDS - start > TIMEOUT)); then
    say "no ==VMEMFS-READY== after $TIMEOUT s; console tail:"
    tail -n 20 "$DIR/console.log" >&2 || true
    virsh -c "$URI" destroy "$NAME" >/dev/null 2>&1 || true
    exit 1
  fi
  sleep 0.5
done
say "domain $NAME ready after $((SECONDS - start)) s"
echo "$pid"
