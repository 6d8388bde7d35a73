#!/bin/bash
# build-guest.sh OUTDIR [FLAVOUR]: builds the vmemfs test guest from Debian packages.
#   FLAVOUR: the Debian kernel flavour, default cloud-amd64 (x86-64); 686-pae (i386, PAE paging)
#            or 686 (i386, 2-level 32-bit paging) build a 32-bit guest: i386 kernel and
#            busybox-static (apt-get download, never installed) and helpers built gcc -m32.
#   OUTDIR/vmlinuz            Debian kernel (version in OUTDIR/kernel-version)
#   OUTDIR/initramfs.cpio.gz  busybox-static + /init (init.sh) + marker, ticker, pstruth, bigmap,
#                             threads
#                             (+ marker32, the marker built -m32, on x86-64)
#                             + the kernel modules listed in $modules (/lib/modules/*.ko)
# Idempotent: an existing kernel of the same version and an initramfs built from the same
# sources (OUTDIR/initramfs.stamp) are reused. Needs root (apt-get) on Debian 12.
set -euo pipefail
[ $# -eq 1 ] || [ $# -eq 2 ] || { echo "usage: $0 OUTDIR [cloud-amd64|686-pae|686]" >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
flavour=${2:-cloud-amd64}
case "$flavour" in
  cloud-amd64) arch=amd64; cflags=() ;;
  686-pae | 686) arch=i386; cflags=(-m32) ;;
  *) echo "build-guest: unknown flavour $flavour" >&2; exit 2 ;;
esac
# i386 packages are only downloaded, so the i386 architecture just has to be known to apt.
if [ "$arch" = i386 ] && ! dpkg --print-foreign-architectures | grep -qx i386; then
  dpkg --add-architecture i386
  "$(dirname "$0")"/../apt-update.sh
fi

need=()
# gcc-multilib: -m32 helpers (all of them on i386, marker32 on x86-64).
for p in busybox-static cpio gcc libc6-dev gzip xz-utils gcc-multilib; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  "$(dirname "$0")"/../apt-update.sh
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# --- kernel: the version linux-image-$flavour depends on -------------------------------------
meta=linux-image-$flavour
[ "$arch" = i386 ] && meta=$meta:i386
kpkg() { apt-cache depends "$meta" 2>/dev/null |
  sed -n "s/^ *Depends: \\(linux-image-[0-9].*-$flavour\\)\\(:i386\\)\\?$/\\1/p" | head -n1; }
pkg=$(kpkg)
if [ -z "$pkg" ]; then "$(dirname "$0")"/../apt-update.sh; pkg=$(kpkg); fi
[ -n "$pkg" ] || { echo "build-guest: cannot resolve $meta" >&2; exit 1; }
kver=${pkg#linux-image-}
[ "$arch" = i386 ] && pkg=$pkg:i386
# Real modules of that kernel for the guest to load (x_tables is used by xt_mac: a "used by"
# entry in /proc/modules). Small, and they load without hardware under TCG.
modules="drivers/net/dummy.ko net/netfilter/x_tables.ko net/netfilter/xt_mac.ko"
have_modules() {
  local m
  for m in $modules; do [ -s "$out/modules/$(basename "$m")" ] || return 1; done
}
if [ -s "$out/vmlinuz" ] && [ "$(cat "$out/kernel-version" 2>/dev/null)" = "$kver" ] &&
  [ "$(cat "$out/flavour" 2>/dev/null)" = "$flavour" ] &&
  have_modules; then
  echo "build-guest: kernel $kver already present"
else
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -q "$pkg" 2>&1 | grep -v 'unsandboxed' || true)
  dpkg -x "$tmp"/"${pkg%:i386}"_*.deb "$tmp/x"
  cp "$tmp/x/boot/vmlinuz-$kver" "$out/vmlinuz"
  rm -rf "$out/modules" && mkdir -p "$out/modules"
  for m in $modules; do
    ko="$tmp/x/lib/modules/$kver/kernel/$m"
    if [ -f "$ko" ]; then
      cp "$ko" "$out/modules/"
    else  # newer Debian kernels ship compressed modules
      xz -dc "$ko.xz" > "$out/modules/$(basename "$m")"
    fi
  done
  echo "$kver" > "$out/kernel-version"
  echo "$flavour" > "$out/flavour"
  rm -rf "$tmp"
  echo "build-guest: kernel $kver -> $out/vmlinuz"
fi

# --- initramfs ----------------------------------------------------------------------------------
# busybox: the host's for x86-64; for i386 the i386 busybox-static package, unpacked.
busybox_version() {
  if [ "$arch" = i386 ]; then apt-cache policy busybox-static:i386 | sed -n 's/ *Candidate: //p'
  else dpkg-query -W busybox-static; fi
}
stamp=$( (cat "$src"/init.sh "$src"/*.c "$out"/modules/*.ko; echo "$flavour"; busybox_version) |
  sha256sum | cut -c1-16)
if [ -s "$out/initramfs.cpio.gz" ] && [ "$(cat "$out/initramfs.stamp" 2>/dev/null)" = "$stamp" ]
then
  echo "build-guest: initramfs up to date"
  exit 0
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,lib/modules}
for m in $modules; do cp "$out/modules/$(basename "$m")" "$root/lib/modules/"; done
if [ "$arch" = i386 ]; then
  bb=$(mktemp -d)
  (cd "$bb" && apt-get download -q busybox-static:i386 2>&1 | grep -v 'unsandboxed' || true)
  dpkg -x "$bb"/busybox-static_*.deb "$bb/x"
  cp "$bb/x/bin/busybox" "$root/bin/busybox"
  rm -rf "$bb"
else
  cp /bin/busybox "$root/bin/busybox"
fi
install -m 755 "$src/init.sh" "$root/init"
for prog in marker ticker pstruth bigmap threads; do
  gcc "${cflags[@]}" -static -pthread -O2 -Wall -Wextra -o "$root/bin/$prog" "$src/$prog.c"
done
# A 32-bit (compat) process on the 64-bit kernel: the marker built -m32.
if [ "$arch" = amd64 ]; then
  gcc -m32 -static -O2 -Wall -Wextra -o "$root/bin/marker32" "$src/marker.c"
fi
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 \
  > "$out/initramfs.cpio.gz"
echo "$stamp" > "$out/initramfs.stamp"
echo "build-guest: initramfs -> $out/initramfs.cpio.gz ($(stat -c %s "$out/initramfs.cpio.gz") bytes)"
