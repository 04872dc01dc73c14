#!/bin/sh
# Scenario "contract": runs a test executable from /lab/bin as root with the spare drives it may
# wipe in MESHSTOR_LAB_SPARE_DRIVES (drives 2 to 5 of this node; drive 1 is never handed out).
#   LAB_test       executable name in /lab/bin
#   LAB_test_args  its arguments, shell-quoted (default for Catch2 binaries: "[.privileged]")
. /lab/lib.sh

MESHSTOR_LAB_SPARE_DRIVES="$(drive 2),$(drive 3),$(drive 4),$(drive 5)"
export MESHSTOR_LAB_SPARE_DRIVES
log "MESHSTOR_LAB_SPARE_DRIVES=$MESHSTOR_LAB_SPARE_DRIVES"
[ -x "/lab/bin/$LAB_test" ] || die "/lab/bin/$LAB_test missing"
eval "set -- ${LAB_test_args:-}"
log "running /lab/bin/$LAB_test $*"
cd /tmp
"/lab/bin/$LAB_test" "$@"
rc=$?
lab_event test-exit "rc=$rc"
exit $rc
