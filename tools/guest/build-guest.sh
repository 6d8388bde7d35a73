#!/bin/bash
# build-guest.sh OUTDIR: builds the vmemfs test guest from Debian packages.
#   OUTDIR/vmlinuz            Debian cloud kernel (version in OUTDIR/kernel-version)
#   OUTDIR/initramfs.cpio.gz  busybox-static + /init (init.sh) + marker, ticker, pstruth, bigmap
#                             + the kernel modules listed in $modules (/lib/modules/*.ko)
# Idempotent: an existing kernel of the same version and an initramfs built from the same
# sources (OUTDIR/initramfs.stamp) are reused. Needs root (apt-get) on Debian 12.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
src=$(cd "$(dirname "$0")" && pwd)

need=()
for p in busybox-static cpio gcc libc6-dev gzip xz-utils; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# --- kernel: the version linux-image-cloud-amd64 depends on -----------------------------------
kpkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null |
  sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1; }
pkg=$(kpkg)
if [ -z "$pkg" ]; then apt-get update -qq; pkg=$(kpkg); fi
[ -n "$pkg" ] || { echo "build-guest: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
kver=${pkg#linux-image-}
# Real modules of that kernel for the guest to load (x_tables is used by xt_mac: a "used by"
# entry in /proc/modules). Small, and they load without hardware under TCG.
modules="drivers/net/dummy.ko net/netfilter/x_tables.ko net/netfilter/xt_mac.ko"
have_modules() {
  local m
  for m in $modules; do [ -s "$out/modules/$(basename "$m")" ] || return 1; done
}
if [ -s "$out/vmlinuz" ] && [ "$(cat "$out/kernel-version" 2>/dev/null)" = "$kver" ] &&
  have_modules; then
  echo "build-guest: kernel $kver already present"
else
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -q "$pkg" 2>&1 | grep -v 'unsandboxed' || true)
  dpkg -x "$tmp"/"$pkg"_*.deb "$tmp/x"
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
  rm -rf "$tmp"
  echo "build-guest: kernel $kver -> $out/vmlinuz"
fi

# --- initramfs ----------------------------------------------------------------------------------
stamp=$( (cat "$src"/init.sh "$src"/*.c "$out"/modules/*.ko; dpkg-query -W busybox-static) |
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
cp /bin/busybox "$root/bin/busybox"
install -m 755 "$src/init.sh" "$root/init"
for prog in marker ticker pstruth bigmap; do
  gcc -static -O2 -Wall -Wextra -o "$root/bin/$prog" "$src/$prog.c"
done
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 \
  > "$out/initramfs.cpio.gz"
echo "$stamp" > "$out/initramfs.stamp"
echo "build-guest: initramfs -> $out/initramfs.cpio.gz ($(stat -c %s "$out/initramfs.cpio.gz") bytes)"
