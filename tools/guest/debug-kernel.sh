#!/bin/bash
# debug-kernel.sh IMAGEDIR: the test guests' kernel with its debug info, for crash, drgn and gdb.
#   IMAGEDIR/vmlinux   the vmlinux of Debian's linux-image-<IMAGEDIR/kernel-version>-dbg
#                      (build-guest.sh wrote kernel-version)
# The .deb is ~283 MB: it is downloaded once, with apt-get, into $VMEMFS_CACHE (default
# /var/cache/vmemfs, outside every work tree and build directory, so a fresh clone or build
# does not download it again) and kept there. Idempotent: an IMAGEDIR/vmlinux of the same
# package version is kept; otherwise it is extracted from the cached .deb (~30 s of xz).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 IMAGEDIR" >&2; exit 2; }
out=$(cd "$1" && pwd)
kver=$(cat "$out/kernel-version")
pkg="linux-image-$kver-dbg"
cache=${VMEMFS_CACHE:-/var/cache/vmemfs}
mkdir -p "$cache"

# The newest cached .deb of that package, if any; else download it.
deb=$(ls -t "$cache/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
  apt-cache show "$pkg" >/dev/null 2>&1 || "$(dirname "$0")"/../apt-update.sh
  # apt's sandbox user cannot write into a root-owned cache: download in a private directory.
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -q "$pkg" 2>&1 | grep -v 'unsandboxed' || true)
  new=$(ls "$tmp/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$new" ]; then  # stale package lists name a version the mirror no longer has
    "$(dirname "$0")"/../apt-update.sh
    (cd "$tmp" && apt-get download -q "$pkg" 2>&1 | grep -v 'unsandboxed' || true)
    new=$(ls "$tmp/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
  fi
  [ -n "$new" ] || { echo "debug-kernel: apt-get download $pkg failed" >&2; rm -rf "$tmp"; exit 1; }
  mv "$new" "$cache/"
  rm -rf "$tmp"
  deb="$cache/$(basename "$new")"
  echo "debug-kernel: downloaded $(basename "$deb") into $cache"
  # A new guest kernel makes the older -dbg packages useless: drop them so the cache stays
  # at one package (~283 MB) instead of growing with each Debian kernel update.
  for old in "$cache"/linux-image-*-dbg_*.deb; do
    [ "$old" = "$deb" ] || rm -f "$old"
  done
fi
version=$(dpkg-deb -f "$deb" Version)

if [ -s "$out/vmlinux" ] && [ "$(cat "$out/vmlinux.version" 2>/dev/null)" = "$version" ]; then
  echo "debug-kernel: $out/vmlinux ($pkg $version) already present"
  exit 0
fi
member="./usr/lib/debug/boot/vmlinux-$kver"
# --occurrence: stop reading the archive once the file is out (it comes first, before the
# modules' debug files).
# dpkg-deb then complains of a broken pipe: only an empty result is an error.
dpkg-deb --fsys-tarfile "$deb" 2>"$out/vmlinux.err" |
  tar -xO --occurrence=1 "$member" > "$out/vmlinux.tmp" || true
if ! [ -s "$out/vmlinux.tmp" ]; then
  echo "debug-kernel: no $member in $deb" >&2
  cat "$out/vmlinux.err" >&2
  exit 1
fi
rm -f "$out/vmlinux.err"
mv "$out/vmlinux.tmp" "$out/vmlinux"
echo "$version" > "$out/vmlinux.version"
echo "debug-kernel: $pkg $version -> $out/vmlinux ($(stat -c %s "$out/vmlinux") bytes)"
