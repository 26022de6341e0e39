#!/usr/bin/env bash
# purge.sh -- removing finished mail from a large queue (server.keep_finished):
# how fast, at what CPU cost, and what it does to mail arriving meanwhile.
#
#   bench/purge.sh [-n COUNT] [-m MESSAGES] [-k] [POSTCONN [QUEUE_FILL]]
#
# Defaults: 200000 finished messages of 2048 bytes, delivered two days ago,
# written by queue_fill (build/bench/queue_fill) before 1000 unfinished ones
# (deferred, an hour to their next attempt). `postconn serve` starts on that
# queue with keep_finished = "10s" (passes a second apart); once the first
# messages are gone, smtp-source sends MESSAGES (default 2000) over 20
# sessions to a maildir postoffice while the purge runs, and again after it
# has finished. Prints the seconds until every finished message is gone,
# messages removed per second, the server's CPU seconds per 1,000 removed
# (the load's share included: it is not split), smtp-source's accepted msg/s
# during and after the purge, and the queue file's size before and after
# (it keeps its size: freed pages are reused). -k keeps the scratch
# directory.
set -euo pipefail
export LC_ALL=C
source "$(dirname "$0")/bench_lib.sh"

count=200000
messages=2000
keep=
while getopts 'n:m:kh' opt; do
  case $opt in
    n) count=$OPTARG ;;
    m) messages=$OPTARG ;;
    k) keep=1 ;;
    *) sed -n '5,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
postconn=$(resolve_binary "${1:-$source_dir/build/postconn}")
queue_fill=$(queue_fill_binary "$postconn" "${2:-}")
smtp_source=$(postfix_tool smtp-source)

bench_start purge
read -r smtp_port admin_port <<<"$(free_ports 2)"
admin=http://127.0.0.1:$admin_port
mkdir -p "$work/var" "$work/live/bob/"{tmp,new,cur}
touch "$work/live/.postoffice"
cat >"$work/postconn.toml" <<TOML
[server]
hostname = "bench.example.test"
data_dir = "var"
keep_finished = "10s"
[smtp]
listen = "127.0.0.1:$smtp_port"
[admin]
listen = "127.0.0.1:$admin_port"
$(maildir_postoffice dead "$work/dead")
$(maildir_postoffice live "$work/live")
TOML

"$queue_fill" "$work/var/queue.db" "$count" --postoffice live --finished-ago 172800
"$queue_fill" "$work/var/queue.db" 1000 --open-retries 1 --due-after 3600
size_before=$(du -m "$work/var/queue.db" | cut -f1)

# load WHAT: MESSAGES over 20 sessions to live; prints smtp-source's rate.
load() {
  local start
  start=$(now)
  "$smtp_source" -s 20 -m "$messages" -l 2048 -f ann@live.example.test \
    -t bob@live.example.test -M client.example.test "127.0.0.1:$smtp_port"
  awk -v s="$start" -v n="$EPOCHREALTIME" -v m="$messages" -v what="$1" \
    'BEGIN { printf "accepted %s: %d messages in %.2fs (%.0f msg/s)\n", what, m, n - s, m / (n - s) }'
}

start=$(now)
(cd "$work" && exec "$postconn" serve --config postconn.toml 2>server.log) &
server_pid=$!
wait_for_banner "$smtp_port" "$server_pid" 60 || fail "no banner; see $work/server.log"
cpu_before=$(cpu_ticks "$server_pid")
until (($(metric "$admin" postconn_messages_purged_total) > 0)); do sleep 0.02; done
load "during the purge"
until (($(metric "$admin" postconn_messages_purged_total) >= count)); do
  kill -0 "$server_pid" 2>/dev/null || fail "the server died; see $work/server.log"
  sleep 0.05
done
purge_seconds=$(seconds_since "$start")
cpu=$(($(cpu_ticks "$server_pid") - cpu_before))
echo "purge: $count finished messages gone ${purge_seconds}s after the start" \
  "($(awk -v n="$count" -v s="$purge_seconds" 'BEGIN { printf "%.0f", n / s }')/s," \
  "first pass 1 s after the start included);" \
  "$(awk -v t="$cpu" -v hz="$ticks_per_second" -v n="$count" \
      'BEGIN { printf "%.3f", t / hz / n * 1000 }') CPU s per 1,000 removed"
load "after the purge"
echo "queue file: ${size_before} MiB before, $(du -m "$work/var/queue.db" | cut -f1) MiB after"
