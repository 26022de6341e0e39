#!/usr/bin/env bash
# profile_hot_path.sh -- instructions per message on postconn's hot path
# (SMTP in, fsync'd queue, SMTP out), counted by valgrind's callgrind.
#
#   bench/profile_hot_path.sh [-m MESSAGES] [-l BYTES] [-s SESSIONS] [-d] [-p POSTOFFICES] [POSTCONN]
#
# Defaults: 1000 messages of 2048 bytes over 4 sessions, a connection per
# message (-d: kept), into `postconn serve` with one smtp postoffice whose
# address is Postfix's smtp-sink (-p N: N postoffices at that sink, the
# load spread over their domains), as in vs_postfix.sh. Counting starts once the server greets and stops when the
# sink has every message, so start-up and shutdown are not counted. Prints
# the instructions per message in all, then the functions with the most
# instructions per message, inclusive (a function with its callees) and
# exclusive (its own code). Instruction counts do not depend on the load of
# the machine, unlike times. The scratch directory is kept (its path is
# printed), with the callgrind file for callgrind_annotate or kcachegrind.
set -euo pipefail
export LC_ALL=C
source "$(dirname "$0")/bench_lib.sh"

messages=1000
bytes=2048
sessions=4
reuse=()
postoffices=1
while getopts 'm:l:s:dp:h' opt; do
  case $opt in
    m) messages=$OPTARG ;;
    l) bytes=$OPTARG ;;
    s) sessions=$OPTARG ;;
    d) reuse=(-d) ;;
    p) postoffices=$OPTARG ;;
    *) sed -n '5,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
postconn=$(resolve_binary "${1:-${POSTCONN:-$source_dir/${BUILD_DIR:-build}/postconn}}")
command -v valgrind >/dev/null || fail "valgrind is not installed"
command -v smtp-sink >/dev/null || fail "smtp-sink (Debian package postfix) is not installed"

keep=1 # the callgrind data
bench_start profile

read -r smtp_port admin_port sink_port <<<"$(free_ports 3)"
relay_config "$smtp_port" "$admin_port" "$sink_port" slow >"$work/postconn.toml"
((postoffices == 1)) || spread_postoffices "$sink_port" slow >>"$work/postconn.toml"

sink_user=()
[ "$(id -u)" != 0 ] || sink_user=(-u nobody) # smtp-sink will not run as root
python3 "$bench_dir/vs_postfix/sink.py" "$messages" "$work/delivered" \
  smtp-sink "${sink_user[@]}" "127.0.0.1:$sink_port" 256 &
extra_pids=$!
wait_for_banner "$sink_port" "$extra_pids" 10 || fail "smtp-sink did not start"
(cd "$work" && exec valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$work/callgrind.out" "$postconn" serve --config postconn.toml) \
  2>"$work/postconn.log" &
server_pid=$!
wait_for_banner "$smtp_port" "$server_pid" 300 || fail "no greeting (see $work/postconn.log)"
callgrind_control --instr=on "$server_pid" >/dev/null
echo "profiling: $messages messages of $bytes bytes over $sessions sessions" \
  "$([ ${#reuse[@]} -gt 0 ] && echo "(connections kept) ")to $postoffices postoffice(s) (slow: valgrind)"
source_load "$(command -v smtp-source)" "$smtp_port"
until [ -s "$work/delivered" ]; do
  kill -0 "$server_pid" 2>/dev/null || fail "postconn exited (see $work/postconn.log)"
  sleep 0.2
done
callgrind_control --instr=off "$server_pid" >/dev/null
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=

callgrind_annotate --inclusive=yes "$work/callgrind.out" >"$work/inclusive.txt"
callgrind_annotate "$work/callgrind.out" >"$work/exclusive.txt"
# The per-function lines: "COUNT (PERCENT) FILE:FUNCTION [OBJECT]".
per_message() {
  awk -v n="$messages" -v top="$2" '
    /^-+$/ { rule++; next }
    rule >= 3 && $1 ~ /^[0-9,]+$/ && shown < top {
      count = $1; gsub(",", "", count)
      line = $0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", line)
      sub(/ \[[^]]*\]$/, "", line); sub(/^[^:]*:/, "", line)
      if (length(line) > 110) line = substr(line, 1, 107) "..."
      printf "%12.0f  %s\n", count / n, line; shown++
    }' "$1"
}
total=$(awk '/^[0-9,]+ +\(100.0%\) +PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }' \
  "$work/exclusive.txt")
echo
printf 'instructions per message, all threads: %.0f\n' "$(awk -v t="$total" -v n="$messages" \
  'BEGIN { print t / n }')"
echo
echo "inclusive (with callees), per message:"
per_message "$work/inclusive.txt" 40
echo
echo "exclusive (own code), per message:"
per_message "$work/exclusive.txt" 25
echo
echo "callgrind data: $work/callgrind.out"
