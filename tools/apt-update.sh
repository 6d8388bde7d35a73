#!/usr/bin/env bash
# apt-get update that survives a mirror caught mid-sync: one index file of the wrong size
# ("Mirror sync in progress?") fails the whole update, although every other index, and usually
# an older copy of that one, is fine. Tries three times, 20 s apart; after that it warns and
# succeeds, so the apt-get install or download that follows is the one to fail if a package is
# really missing, and it names the package.
set -uo pipefail
for attempt in 1 2 3; do
  if apt-get update -qq; then exit 0; fi
  ((attempt < 3)) && sleep 20
done
echo "apt-update: apt-get update failed three times; going on with the indexes apt has" >&2
exit 0
