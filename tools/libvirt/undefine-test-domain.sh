#!/usr/bin/env bash
# undefine-test-domain.sh NAME: stops (virsh destroy) and undefines the test domain NAME that
# define-test-domain.sh created: a transient one (gone after destroy) or a persistent one
# (VMEMFS_START=0; running or shut off). Removes DIR=$VMEMFS_LIBVIRT_DIR/NAME (default
# /tmp/vmemfs-libvirt/NAME) with its console.log, truth.log, truth/ and domain.xml.
# Succeeds when the domain does not exist.
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
  echo "undefine-test-domain: destroyed and undefined $NAME"
else
  echo "undefine-test-domain: no domain $NAME"
fi
rm -rf "$DIR"
