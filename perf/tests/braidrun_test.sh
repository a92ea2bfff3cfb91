#!/bin/sh
# braidrun_test.sh BRAIDRUN MODE: checks one behaviour of the local launcher (a CTest case).
#   fail_fast  one rank exits 3 while the others sleep 30 s: braidrun must exit non-zero within
#              a few seconds, name the rank, and leave no process behind
#   prefix     rank 0's stdout unprefixed, other lines "[rank R] ", whole lines only
#   env        BRAID_RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_SIZE/ROOT set for every rank
#   sigterm    SIGTERM to braidrun stops every rank and braidrun exits non-zero
#   timeout    --timeout kills the ranks and exits 124
set -u
br=$1; mode=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL ($mode): $*"; echo "--- output:"; cat "$tmp/out" 2>/dev/null; exit 1; }
now() { date +%s; }
# A marker in every rank's command line so we can look for leftovers.
tag="braidrun_test_$$"

case $mode in
fail_fast)
  t0=$(now)
  "$br" -n 3 -- sh -c "if [ \$BRAID_RANK = 1 ]; then exit 3; fi; sleep 30; : $tag" >"$tmp/out" 2>&1
  rc=$?; t1=$(now)
  [ $rc -ne 0 ] || fail "exit status 0"
  [ $((t1 - t0)) -le 10 ] || fail "took $((t1 - t0)) s"
  grep -q "braidrun: rank 1 exited with status 3" "$tmp/out" || fail "no report of rank 1"
  sleep 0.2
  if pgrep -f "$tag" >/dev/null; then fail "ranks left behind: $(pgrep -af "$tag")"; fi
  ;;
prefix)
  "$br" -n 4 -- sh -c 'i=0; while [ $i -lt 200 ]; do echo "line $i from $BRAID_RANK end"; i=$((i+1)); done; echo "err $BRAID_RANK" >&2; printf "tail $BRAID_RANK"' >"$tmp/out" 2>"$tmp/err"
  [ $? -eq 0 ] || fail "exit status non-zero"
  cat "$tmp/err" >>"$tmp/out"
  [ "$(grep -c '^line [0-9]* from 0 end$' "$tmp/out")" = 200 ] || fail "rank 0 lines not unprefixed"
  for r in 1 2 3; do
    [ "$(grep -c "^\[rank $r\] line [0-9]* from $r end\$" "$tmp/out")" = 200 ] || fail "rank $r lines"
    grep -q "^\[rank $r\] err $r\$" "$tmp/err" || fail "rank $r stderr not prefixed"
    grep -q "^\[rank $r\] tail $r\$" "$tmp/out" || fail "rank $r partial last line"
  done
  grep -q '^\[rank 0\] err 0$' "$tmp/err" || fail "rank 0 stderr not prefixed"
  grep -q '^tail 0$' "$tmp/out" || fail "rank 0 partial last line"
  [ "$(wc -l <"$tmp/out")" = $((4 * 202)) ] || fail "unexpected line count (interleaved lines?)"
  ;;
env)
  "$br" -n 3 sh -c 'echo "env $BRAID_RANK $BRAID_WORLD_SIZE $BRAID_LOCAL_RANK $BRAID_LOCAL_SIZE $BRAID_ROOT"' >"$tmp/out" 2>&1 || fail "exit status"
  for r in 0 1 2; do
    grep -Eq "env $r 3 $r 3 127\.0\.0\.1:[0-9]+\$" "$tmp/out" || fail "rank $r environment"
  done
  [ "$(grep -o '127\.0\.0\.1:[0-9]*' "$tmp/out" | sort -u | wc -l)" = 1 ] || fail "BRAID_ROOT differs"
  ;;
sigterm)
  "$br" -n 3 -- sh -c "sleep 30; : $tag" >"$tmp/out" 2>&1 &
  pid=$!
  sleep 0.5
  kill -TERM $pid
  t0=$(now); wait $pid; rc=$?; t1=$(now)
  [ $rc -ne 0 ] || fail "exit status 0 after SIGTERM"
  [ $((t1 - t0)) -le 8 ] || fail "took $((t1 - t0)) s to stop"
  sleep 0.2
  if pgrep -f "$tag" >/dev/null; then fail "ranks left behind: $(pgrep -af "$tag")"; fi
  ;;
timeout)
  "$br" -n 2 --timeout 1 -- sh -c "sleep 30; : $tag" >"$tmp/out" 2>&1
  rc=$?
  [ $rc -eq 124 ] || fail "exit status $rc, expected 124"
  grep -q timeout "$tmp/out" || fail "no timeout message"
  ;;
*) echo "unknown mode $mode"; exit 2 ;;
esac
echo "PASS ($mode)"
