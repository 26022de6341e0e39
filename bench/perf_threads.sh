#!/usr/bin/env bash
# perf_threads.sh -- where postconn's CPU goes on the hot path, per thread,
# kernel included, sampled by perf at full speed.
#
#   bench/perf_threads.sh [-m MESSAGES] [-l BYTES] [-s SESSIONS] [-d] [-p POSTOFFICES] [POSTCONN]
#
# The load and the destination of vs_postfix.sh's postconn case: MESSAGES
# (default 5000) of BYTES (2048) over SESSIONS (20) smtp-source sessions, a
# connection per message (-d: kept), to one smtp postoffice at an
# smtp-sink (-p N: N postoffices at the same sink, the load spread over
# their domains). perf samples postconn on the CPU clock from the start of
# the load to the last delivery. Prints the CPU seconds per 1,000 messages
# (utime+stime), each thread's share of the samples with user and kernel
# apart, and each thread's busiest functions, self time; and the store's
# commits (each fsync'd) per message with their mean duration. Complements
# profile_hot_path.sh, whose instruction counts leave the kernel out. The
# scratch directory is kept (its path is printed), with perf.data for
# `perf report`. Needs Debian's linux-perf. With TRACE set, that command
# attaches instead of perf (TRACE='strace -c -f -o FILE': system calls
# counted; the report then has no samples).
set -euo pipefail
export LC_ALL=C
source "$(dirname "$0")/bench_lib.sh"

messages=5000
bytes=2048
sessions=20
reuse=()
postoffices=1
while getopts 'm:l:s:dp:h' opt; do
  case $opt in
    m) messages=$OPTARG ;;
    l) bytes=$OPTARG ;;
    s) sessions=$OPTARG ;;
    d) reuse=(-d) ;;
    p) postoffices=$OPTARG ;;
    *) sed -n '5,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
((messages % postoffices == 0)) || fail "-m $messages is not a multiple of -p $postoffices"
postconn=$(resolve_binary "${1:-${POSTCONN:-$source_dir/${BUILD_DIR:-build}/postconn}}")
command -v perf >/dev/null || fail "perf is not installed (Debian package linux-perf)"
smtp_source=$(postfix_tool smtp-source)
postfix_tool smtp-sink >/dev/null

keep=1 # perf.data
bench_start perf

read -r smtp_port admin_port sink_port <<<"$(free_ports 3)"
relay_config "$smtp_port" "$admin_port" "$sink_port" >"$work/postconn.toml"
((postoffices == 1)) || spread_postoffices "$sink_port" >>"$work/postconn.toml"

sink_user=()
[ "$(id -u)" != 0 ] || sink_user=(-u nobody) # smtp-sink will not run as root
python3 "$bench_dir/vs_postfix/sink.py" "$messages" "$work/delivered" \
  smtp-sink "${sink_user[@]}" "127.0.0.1:$sink_port" 256 &
extra_pids=$!
wait_for_banner "$sink_port" "$extra_pids" 10 || fail "smtp-sink did not start"
(cd "$work" && exec "$postconn" serve --config postconn.toml) 2>"$work/postconn.log" &
server_pid=$!
wait_for_banner "$smtp_port" "$server_pid" 30 || fail "no greeting (see $work/postconn.log)"

${TRACE:-perf record -q -g -F 2000 -e cpu-clock -o "$work/perf.data"} -p "$server_pid" 2>"$work/perf.log" &
perf_pid=$!
extra_pids="$extra_pids $perf_pid"
sleep 0.5 # perf attaches to every thread
before=$(cpu_ticks "$server_pid")
source_load "$smtp_source" "$smtp_port"
until [ -s "$work/delivered" ]; do
  kill -0 "$server_pid" 2>/dev/null || fail "postconn exited (see $work/postconn.log)"
  sleep 0.05
done
after=$(cpu_ticks "$server_pid")
curl -sf --max-time 30 "http://127.0.0.1:$admin_port/metrics" >"$work/metrics.txt" || true
kill -INT "$perf_pid"
wait "$perf_pid" || true
stop_server

echo "$messages messages of $bytes bytes, $sessions sessions," \
  "$([ ${#reuse[@]} -gt 0 ] && echo "connections kept" || echo "a connection per message")," \
  "$postoffices postoffice(s)"
awk -v t=$((after - before)) -v hz="$ticks_per_second" -v n="$messages" \
  'BEGIN { printf "CPU s per 1,000 messages: %.3f\n", t / hz / n * 1000 }'
# Each 250 and each recorded outcome waits for a commit and its fsync.
awk -v n="$messages" '
  $1 == "postconn_store_commits_total" { commits = $2 }
  $1 == "postconn_store_commit_seconds_sum" { seconds = $2 }
  END { if (commits > 0) printf "store: %d commits, %.2f per message, %.2f ms each on average\n\n",
          commits, commits / n, seconds / commits * 1000 }' "$work/metrics.txt"

report() {
  perf report -i "$work/perf.data" --no-children --stdio -g none "$@" 2>/dev/null |
    grep -v '^#' | grep -v '^$' || true
}
# perf names a thread "TID:NAME"; CAF names its threads caf.multiplexer (the
# SMTP sessions run there), caf.clock and caf.actor (a detached actor: the
# store, a share worker); the scheduler's workers keep the name of the
# thread that started them. [kernel.kallsyms] is the kernel's share.
report --sort pid,dso >"$work/by_thread.txt"
echo "share of the samples by thread: all, user, kernel (%):"
awk '{ pct = $1; sub("%", "", pct); total[$2] += pct
       if ($3 == "[kernel.kallsyms]") kernel[$2] += pct; else user[$2] += pct }
     END { for (t in total) printf "%6.1f %6.1f %6.1f  %s\n", total[t], user[t], kernel[t], t }' \
  "$work/by_thread.txt" | sort -rn | head -12 | tee "$work/threads.txt"
echo
echo "the busiest threads' busiest functions (self, % of the thread's samples):"
for thread in $(awk '{ print $4 }' "$work/threads.txt" | head -4); do
  echo "$thread"
  report --tid="${thread%%:*}" --percentage relative --sort dso,sym | head -8 |
    awk '{ sym = $0; sub(/^ *[0-9.]+% +/, "", sym)
           if (length(sym) > 100) sym = substr(sym, 1, 97) "..."
           printf "  %7s  %s\n", $1, sym }'
done
