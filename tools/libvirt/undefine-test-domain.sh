#!/usr/bin/env bash
# undefine-test-domain.sh NAME: stops (virsh destroy) and undefines the test domain NAME that
# define-test-domain.sh started, and removes its console files. Succeeds when it does not exist.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 NAME" >&2
  exit 2
fi
readonly NAME=$1
readonly URI=${VMEMFS_LIBVIRT_URI:-qemu:///system}
readonly DIR=${VMEMFS_LIBVIRT_DIR:-/tmp/vmemfs-libvirt}/$NAME
[[ $NAME =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || { echo "bad domain name: $NAME" >&2; exit 2; }

if virsh -c "$URI" domstate "$NAME" >/dev/null 2>&1; then
  virsh -c "$URI" destroy "$NAME" >/dev/null 2>&1 || true
  # Transient domains are gone after destroy; a persistent one also needs undefine.
  virsh -c "$URI" undefine "$NAME" >/dev/null 2>&1 || true
  echo "undefine-test-domain: destroyed $NAME"
else
  echo "undefine-test-domain: no domain $NAME"
fi
rm -rf "$DIR"
