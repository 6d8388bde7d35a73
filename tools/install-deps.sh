#!/bin/bash
# Installs every Debian 12 package vmemfs needs to build, test, fuzz and benchmark. Idempotent.
set -euo pipefail
packages=(
  build-essential cmake pkg-config git ca-certificates
  fuse3 libfuse3-dev libcli11-dev libfmt-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev libbpf-dev libelf-dev zlib1g-dev
  nlohmann-json3-dev
  libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxen-dev
  clang-14 libclang-rt-14-dev
  qemu-system-x86 busybox-static cpio gzip python3 xxd binutils file
  yara
  crash python3-drgn gdb
  man-db systemd  # tests/install: man, groff, systemd-analyze, systemd-escape
  gcc-multilib  # the 32-bit test guests' static helpers (gcc -m32 -static)
)
# The 32-bit test guests' kernels and busybox are i386 packages (apt-get download only).
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  dpkg --add-architecture i386
  "$(dirname "$0")"/apt-update.sh
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "$(dirname "$0")"/apt-update.sh
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# clang and clang++ without version suffix for the fuzz build.
for t in clang clang++; do
  command -v "$t" >/dev/null || ln -sf "/usr/bin/$t-14" "/usr/local/bin/$t"
done
