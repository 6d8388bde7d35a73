#!/bin/busybox sh
# /init of the vmemfs test guest: starts the helper processes, prints ground truth on the
# second serial port (ttyS1; ttyS0 carries kernel messages) and idles forever.
# Kernel command line option: vmemfs.extra=N (extra sleeping processes, default 0).
/bin/busybox mkdir -p /proc /sys /dev /tmp /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
# Which boot this is: the kernel's random boot_id, first on both ports, so the host can split
# truth.log (it keeps growing across resets) into boots. The leading newline puts it on a line of
# its own even when a reset cut the previous boot's output mid-line.
stty -F /dev/ttyS1 raw -echo
boot_id=$(cat /proc/sys/kernel/random/boot_id)
printf '\n==VMEMFS-BOOT %s==\n' "$boot_id" > /dev/ttyS1
printf '\n==VMEMFS-BOOT %s==\n' "$boot_id"
echo 0 > /proc/sys/kernel/kptr_restrict  # real addresses in kallsyms
echo "vmemfs init: starting helpers"
# Real modules (tools/guest/build-guest.sh), dependencies first: /proc/modules and the module
# part of /proc/kallsyms become truth.
for ko in dummy x_tables xt_mac; do
  insmod /lib/modules/$ko.ko || echo "vmemfs init: insmod $ko failed"
done

opt() { sed -n "s/.*vmemfs\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
extra=$(opt extra); extra=${extra:-0}

for name in alpha bravo charlie; do marker $name > /tmp/marker.$name & done
ticker > /tmp/ticker.out &
# x86-64 images: a 32-bit (compat) marker too, its lines kept apart from the 64-bit markers'.
if [ -x /bin/marker32 ]; then marker32 delta > /tmp/marker32.out & fi
# bigmap runs from a tmpfs mounted on a tmpfs mounted on the root: its maps and exe paths cross
# two mount points (d_path's mnt_mountpoint/mnt_parent steps).
mkdir -p /mnt && mount -t tmpfs outer /mnt && mkdir /mnt/deep && mount -t tmpfs inner /mnt/deep
cp /bin/bigmap /mnt/deep/bigmap
/mnt/deep/bigmap 32 > /tmp/bigmap.out &
# Several threads and ids other than root's (the only process of the guest with either).
threads > /tmp/threads.out &
i=0
while [ $i -lt "$extra" ]; do sleep $((1000000 + i)) & i=$((i + 1)); done
# Wait until every helper has printed its addresses (4 lines per marker, 1 each for the
# ticker and bigmap).
until [ "$(cat /tmp/marker.* /tmp/ticker.out /tmp/bigmap.out | wc -l)" -ge 14 ]; do
  usleep 100000
done
if [ -x /bin/marker32 ]; then
  until [ "$(cat /tmp/marker32.out | wc -l)" -ge 4 ]; do usleep 100000; done
fi
until [ -s /tmp/threads.out ]; do usleep 100000; done
# The extra sleeps are forked before they exec: until then they show the shell's name, and a
# process list taken meanwhile would not be the one the snapshot sees a moment later.
# At most 30 s: a busybox that names them otherwise must not keep the guest from READY.
n=0
until [ "$(grep -lx sleep /proc/[0-9]*/comm 2>/dev/null | wc -l)" -ge "$extra" ] || [ $n -ge 300 ]; do
  usleep 100000; n=$((n + 1))
done

begin() { echo "==VMEMFS-BEGIN $1=="; }
end() { echo "==VMEMFS-END $1=="; }
exec 3>/dev/ttyS1
start=$(cut -d' ' -f1 /proc/uptime)
{
  begin uname; uname -r; end uname
  begin banner; cat /proc/version; end banner
  begin cmdline; cat /proc/cmdline; end cmdline
  begin markers; cat /tmp/marker.* /tmp/ticker.out /tmp/bigmap.out; end markers
  if [ -x /bin/marker32 ]; then begin markers32; cat /tmp/marker32.out; end markers32; fi
  for pid in $(cut -d' ' -f2 /tmp/marker.* /tmp/marker32.out /tmp/ticker.out /tmp/bigmap.out \
      2>/dev/null | sort -u); do
    begin maps-$pid; cat /proc/$pid/maps; end maps-$pid
  done
  begin ps; pstruth; end ps
  begin tasks; pstruth tasks; end tasks
  begin meminfo; cat /proc/meminfo; end meminfo
  begin iomem; cat /proc/iomem; end iomem
  begin modules; cat /proc/modules; end modules
  # ~3.5 MB; plain text takes ~3 s over the emulated UART (gzip|base64 saved only ~0.5 s).
  begin kallsyms; cat /proc/kallsyms; end kallsyms
  echo "==VMEMFS-READY=="
} >&3
echo "vmemfs init: truth printed in $start..$(cut -d' ' -f1 /proc/uptime) s uptime"
echo "==VMEMFS-READY=="
# `wait` reaps children the moment they exit (marker EXIT): busybox runs `sleep` inside the
# shell, so a plain sleep loop would leave an exited helper a zombie for up to an hour.
while :; do wait; sleep 1; done
