#!/usr/bin/env bash
# queue_scale.sh -- `postconn serve` restarting on a queue of N deferred
# messages: time until it serves (220), memory, and how it behaves with that
# ledger loaded.
#
#   bench/queue_scale.sh [-n COUNT] [-l BYTES] [-k] [POSTCONN [QUEUE_FILL]]
#
# Defaults: 1000000 messages of 2048 bytes; POSTCONN defaults to
# build/postconn, QUEUE_FILL to build/bench/queue_fill (the generator, which
# writes the queue with the server's own queue_db code). -k keeps the
# scratch directory. A quick run:
#   bench/queue_scale.sh -n 100000
#
# The messages were queued for postoffice "dead", whose share is missing:
# each delivery has failed one open and is deferred, its next attempt in an
# hour, so the server sits on the full ledger without working it off. A
# second postoffice "live" is healthy. The server starts twice on the same
# queue (the first start reads a file just written, the second is the
# restart) and for each start reports:
#   serving    seconds until the SMTP port answers 220, and the server's own
#              "read in" time for the ledger
#   memory     VmRSS once serving, VmHWM (peak)
#   idle CPU   CPU seconds over the 10 s after serving
#   one mail   after the second start: one message to bob@live.example.test,
#              seconds until its 250 and until it is in the maildir
#   metrics    seconds for one GET /metrics (it walks the whole ledger)
#   queue      seconds for the first page of GET /queue (oldest first, of all)
# Target: 220 within 10 s of a restart.
set -euo pipefail
export LC_ALL=C
source "$(dirname "$0")/bench_lib.sh"

count=1000000
bytes=2048
keep=
while getopts 'n:l:kh' opt; do
  case $opt in
    n) count=$OPTARG ;;
    l) bytes=$OPTARG ;;
    k) keep=1 ;;
    *) sed -n '6,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
postconn=$(resolve_binary "${1:-$source_dir/build/postconn}")
queue_fill=$(queue_fill_binary "$postconn" "${2:-}")
smtp_source=$(postfix_tool smtp-source)

bench_start queue-scale
read -r smtp_port admin_port <<<"$(free_ports 2)"
admin=http://127.0.0.1:$admin_port

mkdir -p "$work/var" "$work/live/bob/"{tmp,new,cur}
touch "$work/live/.postoffice"
cat >"$work/postconn.toml" <<TOML
[server]
hostname = "bench.example.test"
data_dir = "var"
log_level = "info"
[smtp]
listen = "127.0.0.1:$smtp_port"
# The default high-water mark (1,000,000 unfinished deliveries) would answer
# the one mail below with 452 at the default size: that is its purpose, but
# here the point is serving on a full ledger.
queue_high_water = $((count * 2))
[admin]
listen = "127.0.0.1:$admin_port"
$(maildir_postoffice dead "$work/dead")
$(maildir_postoffice live "$work/live")
$(maildir_postoffice senders "$work/live")
TOML

echo "queue_scale: $count deferred messages of $bytes bytes"
"$queue_fill" "$work/var/queue.db" "$count" --bytes "$bytes" --open-retries 1 \
  --due-after 3600
echo "queue: $(du -h "$work/var/queue.db" | cut -f1) on disk"

# start_once WHAT: starts the server, reports its start-up, leaves it running.
start_once() {
  local what=$1 start cpu_before
  sync
  start=$(now)
  (cd "$work" && exec "$postconn" serve --config postconn.toml 2>>server.log) &
  server_pid=$!
  wait_for_banner "$smtp_port" "$server_pid" 600 || fail "no banner; see the log:
$(tail -5 "$work/server.log")"
  echo "$what: 220 after $(seconds_since "$start")s;" \
    "$(grep -o 'unfinished deliveries (read in [0-9.]*s)' "$work/server.log" | tail -1);" \
    "VmRSS $(mib "$(status_field "$server_pid" VmRSS)")," \
    "VmHWM $(mib "$(status_field "$server_pid" VmHWM)")"
  cpu_before=$(cpu_ticks "$server_pid")
  sleep 10
  echo "$what: $(ticks_to_seconds $(($(cpu_ticks "$server_pid") - cpu_before))) CPU seconds" \
    "in the 10 s after serving"
}

start_once "first start"
stop_started=$(now)
stop_server
echo "shutdown: $(seconds_since "$stop_started")s after SIGTERM"
start_once "restart"

sent=$(now)
"$smtp_source" -m 1 -f ann@senders.example.test -t bob@live.example.test \
  -M client.example.test "127.0.0.1:$smtp_port"
accepted=$(seconds_since "$sent")
until compgen -G "$work/live/bob/new/*" >/dev/null; do
  kill -0 "$server_pid" 2>/dev/null || fail "the server died"
  (($(awk -v s="$sent" -v n="$EPOCHREALTIME" 'BEGIN { print (n - s > 300) }') == 0)) ||
    fail "one message to live not delivered after 300s"
  sleep 0.02
done
echo "one mail: 250 after ${accepted}s, in the maildir after $(seconds_since "$sent")s"

asked=$(now)
depth=$(metric "$admin" postconn_queue_deliveries 'postoffice="dead"')
echo "metrics: GET /metrics took $(seconds_since "$asked")s (dead queue depth $depth)"

asked=$(now)
page=$(curl -sf --max-time 120 "$admin/queue?limit=100")
took=$(seconds_since "$asked")
total=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["total"])' "$page")
echo "queue: GET /queue?limit=100 took ${took}s (total $total)"
echo "memory: VmHWM $(mib "$(status_field "$server_pid" VmHWM)") at the end"
