#!/usr/bin/env bash
# define-test-domain.sh NAME CPU [EXTRA]: a libvirt domain NAME (type='qemu', TCG) that boots the
# test guest of tools/guest (kernel + initramfs of $VMEMFS_GUEST_IMAGE, default
# /tmp/vmemfs-guests/image) the way `guest.py boot --reboot` does: q35, 2 vCPUs, $VMEMFS_MEM MiB
# (default 256), -cpu CPU (qemu64, qemu32 or max), kernel command line
# `console=ttyS0 panic=-1 vmemfs.extra=EXTRA`, ttyS0 into DIR/console.log and the ground truth
# (ttyS1) into DIR/truth.log, DIR=$VMEMFS_LIBVIRT_DIR/NAME (default /tmp/vmemfs-libvirt/NAME).
# DIR/domain.xml is the domain's XML. The two logs are created by QEMU when the domain starts
# (truncated at every start); they keep growing across resets (virsh reset, a guest reboot):
# every boot begins with ==VMEMFS-BOOT <boot_id>== on both (tools/guest/README.md).
#
# Two modes:
#  * default: `virsh create`, a transient domain, started at once. Waits (at most
#    $VMEMFS_BOOT_TIMEOUT s, default 180) for ==VMEMFS-READY== on ttyS1, unless
#    VMEMFS_BOOT_WAIT=0 (then returns once QEMU runs), and prints the QEMU pid as the last line
#    of stdout. `virsh destroy` removes it entirely.
#  * VMEMFS_START=0: `virsh define` only, a persistent domain that stays shut off (so a test can
#    mount `vmemfs --libvirt qemu:///system` first), then `virsh start NAME` boots it; it stays
#    defined across `virsh destroy` and can be started again. Prints DIR as the last line of
#    stdout. undefine-test-domain.sh destroys and undefines it.
# stderr names DIR, console.log and truth.log in both modes. To wait for a boot's READY and
# split its truth into DIR/truth/ (boot.txt, kallsyms.txt, ...):
#   tools/guest/guest.py wait-ready --dir DIR [--boot N] [--timeout S]
#
# <on_reboot> is $VMEMFS_ON_REBOOT: restart (default; a reset or guest reboot boots the guest
# again and the domain stays running, QEMU without -no-reboot) or destroy (the domain ends; with
# that libvirt starts QEMU with -no-reboot, which also makes QEMU exit on `virsh reset`).
# <on_crash> is $VMEMFS_ON_CRASH for a crash the guest reports through the pvpanic device (ISA
# port 0x505): destroy (default), preserve (the crashed guest stays, paused) or restart.
# A domain of the same name (running or defined) is destroyed and undefined first.
#
# The serial ports are QEMU's own file chardevs (<qemu:commandline>, so libvirt reports the
# domain as tainted by custom-argv): with <serial type='file'> libvirt routes them through
# virtlogd, which rolls a log over at 2 MB (truth.log -> truth.log.0), and truth.log is ~4 MB.
# So, as with guest.py, QEMU truncates both files when it starts and appends across resets.
#
# An image of an i386 kernel (its `flavour` file says 686 or 686-pae, tools/guest/build-guest.sh)
# runs as guest.py runs it: arch i686 under qemu-system-i386, a machine without long mode (CPU
# max: PAE paging with 686-pae; qemu32 for 686).
#
# QEMU runs as root without relabelling (a static DAC seclabel), so libvirt never chowns the
# shared image that tools/guest's own guests also use.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 NAME qemu64|qemu32|max [EXTRA]" >&2
  exit 2
fi
readonly NAME=$1 CPU=$2 EXTRA=${3:-0}
readonly URI=${VMEMFS_LIBVIRT_URI:-qemu:///system}
# Absolute: libvirt and QEMU do not run in this directory.
absolute() { if [[ $1 == /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }
readonly IMAGE=$(absolute "${VMEMFS_GUEST_IMAGE:-/tmp/vmemfs-guests/image}")
readonly DIR=$(absolute "${VMEMFS_LIBVIRT_DIR:-/tmp/vmemfs-libvirt}")/$NAME
readonly TIMEOUT=${VMEMFS_BOOT_TIMEOUT:-180}
readonly MEM=${VMEMFS_MEM:-256}
readonly ON_REBOOT=${VMEMFS_ON_REBOOT:-restart}
readonly START=${VMEMFS_START:-1}
readonly ON_CRASH=${VMEMFS_ON_CRASH:-destroy}
readonly HERE=$(cd "$(dirname "$0")" && pwd)

say() { echo "define-test-domain: $*" >&2; }

[[ $NAME =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || { say "bad domain name: $NAME"; exit 2; }
[[ $EXTRA =~ ^[0-9]{1,5}$ ]] || { say "bad EXTRA: $EXTRA"; exit 2; }
# DIR goes into XML and into QEMU's -chardev option (where a comma would split it)
[[ $DIR =~ ^[A-Za-z0-9_./+-]+$ ]] || { say "unsupported characters in DIR: $DIR"; exit 2; }
[[ $MEM =~ ^[0-9]{2,6}$ ]] || { say "bad VMEMFS_MEM: $MEM"; exit 2; }
[[ $ON_REBOOT == restart || $ON_REBOOT == destroy ]] ||
  { say "VMEMFS_ON_REBOOT must be restart or destroy, not $ON_REBOOT"; exit 2; }
[[ $START == 0 || $START == 1 ]] || { say "VMEMFS_START must be 0 or 1"; exit 2; }
case $CPU in
  qemu64 | qemu32) cpu_xml="<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>$CPU</model></cpu>" ;;
  max) cpu_xml="<cpu mode='maximum' check='none'/>" ;;
  *) say "CPU must be qemu64, qemu32 or max, not $CPU"; exit 2 ;;
esac
[[ $ON_CRASH == destroy || $ON_CRASH == preserve || $ON_CRASH == restart ]] ||
  { say "VMEMFS_ON_CRASH must be destroy, preserve or restart, not $ON_CRASH"; exit 2; }

if [[ ! -f $IMAGE/initramfs.cpio.gz || ! -f $IMAGE/vmlinuz ]]; then
  say "building the guest image in $IMAGE"
  "$HERE/../guest/build-guest.sh" "$IMAGE" >&2
fi

if virsh -c "$URI" domstate "$NAME" >/dev/null 2>&1; then
  say "destroying and undefining the existing domain $NAME first"
  virsh -c "$URI" destroy "$NAME" >/dev/null 2>&1 || true
  virsh -c "$URI" undefine "$NAME" >/dev/null 2>&1 || true
fi

# guest.py's qemu_binary(): the i386 kernels on a 32-bit machine.
if [[ $(cat "$IMAGE/flavour" 2>/dev/null || true) == 686* ]]; then
  arch=i686 emulator=/usr/bin/qemu-system-i386
else
  arch=x86_64 emulator=/usr/bin/qemu-system-x86_64
fi

mkdir -p "$DIR"
rm -rf "$DIR"/console.log* "$DIR"/truth.log* "$DIR/truth"
cat >"$DIR/domain.xml" <<XML
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$NAME</name>
  <memory unit='MiB'>$MEM</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='$arch' machine='q35'>hvm</type>
    <kernel>$IMAGE/vmlinuz</kernel>
    <initrd>$IMAGE/initramfs.cpio.gz</initrd>
    <cmdline>console=ttyS0 panic=-1 vmemfs.extra=$EXTRA</cmdline>
  </os>
  $cpu_xml
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>$ON_REBOOT</on_reboot>
  <on_crash>$ON_CRASH</on_crash>
  <devices>
    <emulator>$emulator</emulator>
    <controller type='usb' model='none'/>
    <panic model='isa'><address type='isa' iobase='0x505'/></panic>
    <memballoon model='none'/>
    <video><model type='none'/></video>
  </devices>
  <seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>
  <qemu:commandline>
    <qemu:arg value='-chardev'/><qemu:arg value='file,id=vmemfs-console,path=$DIR/console.log'/>
    <qemu:arg value='-device'/><qemu:arg value='isa-serial,chardev=vmemfs-console,index=0'/>
    <qemu:arg value='-chardev'/><qemu:arg value='file,id=vmemfs-truth,path=$DIR/truth.log'/>
    <qemu:arg value='-device'/><qemu:arg value='isa-serial,chardev=vmemfs-truth,index=1'/>
  </qemu:commandline>
</domain>
XML

say "console: $DIR/console.log truth: $DIR/truth.log"
if [[ $START == 0 ]]; then
  virsh -c "$URI" define "$DIR/domain.xml" >&2
  say "domain $NAME defined, not started (virsh -c $URI start $NAME)"
  echo "$DIR"
  exit 0
fi

start=$SECONDS
virsh -c "$URI" create "$DIR/domain.xml" >&2
# $VMEMFS_LIBVIRT_RUN: the runtime directory of the libvirtd behind URI, as seen from here.
pid=$(cat "${VMEMFS_LIBVIRT_RUN:-/run/libvirt}/qemu/$NAME.pid")
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
