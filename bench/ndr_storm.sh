#!/usr/bin/env bash
# ndr_storm.sh -- N deliveries to one dead postoffice reach the open-retry
# limit within the same minute: how fast the NDRs are committed and sent,
# and whether mail to a healthy postoffice keeps flowing meanwhile.
#
#   bench/ndr_storm.sh [-n COUNT] [-b SECONDS] [-w SECONDS] [-r RATE] [-s SESSIONS]
#                      [-t SECONDS] [-T SECONDS] [-k] [POSTCONN [QUEUE_FILL]]
#
# Defaults: 100000 deliveries, all due at once after a 20 s baseline (-b;
# -w spreads them over that many seconds instead); 200 messages/s over 4
# SMTP sessions (-r, -s) feed the healthy postoffice all along; /metrics is
# sampled every 2 s (-t); the run gives up after 900 s (-T). POSTCONN defaults to build/postconn, QUEUE_FILL to
# build/bench/queue_fill. -k keeps the scratch directory. A quick run:
#   bench/ndr_storm.sh -n 10000 -b 10
#
# Postoffices: "dead" (maildir, share missing, max_open_retries = 3),
# "senders" (smtp, Postfix's smtp-sink: the NDRs go there, since every
# original's sender is ann@senders.example.test) and "live" (a healthy
# maildir). queue_fill writes the N messages for dead with open_retries
# already at the limit, so the next failed open of each bounces it. Meanwhile
# a steady SMTP load sends mail for bob@live.example.test.
#
# From /metrics: NDRs committed = N minus dead's queue depth (a bounced
# delivery leaves the ledger once its NDR is committed), NDRs sent = deliveries
# to senders, live delivered = deliveries to live. Printed: a timeline per
# sample (seconds since the fill started), the NDR commit rate from the
# moment they fell due until all were committed (mean; and the best
# sample), the time until all are committed and until all reached the sink,
# and live's delivered rate before and during the storm.
# Target: >= 5000 NDRs committed per second.
set -euo pipefail
export LC_ALL=C
source "$(dirname "$0")/bench_lib.sh"

count=100000
baseline=20
spread=0
sessions=4
rate=200
sample=2
give_up=900
keep=
while getopts 'n:b:w:r:s:t:T:kh' opt; do
  case $opt in
    n) count=$OPTARG ;;
    b) baseline=$OPTARG ;;
    w) spread=$OPTARG ;;
    r) rate=$OPTARG ;;
    s) sessions=$OPTARG ;;
    t) sample=$OPTARG ;;
    T) give_up=$OPTARG ;;
    k) keep=1 ;;
    *) sed -n '6,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
postconn=$(resolve_binary "${1:-$source_dir/build/postconn}")
queue_fill=$(queue_fill_binary "$postconn" "${2:-}")
smtp_sink=$(postfix_tool smtp-sink)

bench_start ndr-storm
read -r smtp_port admin_port sink_port <<<"$(free_ports 3)"
admin=http://127.0.0.1:$admin_port

mkdir -p "$work/var" "$work/live/bob/"{tmp,new,cur}
touch "$work/live/.postoffice"
cat >"$work/postconn.toml" <<TOML
[server]
hostname = "bench.example.test"
data_dir = "var"
log_level = "warn"
[smtp]
listen = "127.0.0.1:$smtp_port"
[admin]
listen = "127.0.0.1:$admin_port"
$(maildir_postoffice dead "$work/dead")
  [postoffice.retry]
  max_open_retries = 3
  open_interval = "60s"
[[postoffice]]
name = "senders"
domains = ["senders.example.test"]
transport = "smtp"
address = "127.0.0.1:$sink_port"
$(maildir_postoffice live "$work/live")
TOML

echo "ndr_storm: $count deliveries to dead at the open-retry limit, due from" \
  "${baseline}s after the fill over ${spread}s; $rate msg/s of mail to live"
# queue_fill counts --due-after from its start (whole seconds).
filled=$(now)
"$queue_fill" "$work/var/queue.db" "$count" --open-retries 3 \
  --due-after "$baseline" --due-within "$spread"

sink_user=()
[ "$(id -u)" != 0 ] || sink_user=(-u nobody)
"$smtp_sink" "${sink_user[@]}" "127.0.0.1:$sink_port" 256 &
extra_pids=$!

start=$(now)
(cd "$work" && exec "$postconn" serve --config postconn.toml 2>server.log) &
server_pid=$!
wait_for_banner "$smtp_port" "$server_pid" 300 || fail "no banner"
echo "serving after $(seconds_since "$start")s"

# A steady load (smtp-source has no rate limit, and a flood would only grow
# live's queue): RATE messages/s of 2 KiB over SESSIONS connections.
python3 - "$smtp_port" "$rate" "$sessions" <<'PY' &
import os, smtplib, sys, threading, time
port, rate, sessions = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
body = "Subject: live\r\n\r\n" + ("x" * 76 + "\r\n") * 26
def session():
    try:
        smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example.test",
                            timeout=600)
        gap, due = sessions / rate, time.monotonic()
        while True:
            smtp.sendmail("ann@senders.example.test", ["bob@live.example.test"], body)
            due += gap
            time.sleep(max(0, due - time.monotonic()))
    except (OSError, smtplib.SMTPException) as e:
        print(f"live load stopped: {e}", file=sys.stderr)
        os._exit(1)
for _ in range(sessions):
    threading.Thread(target=session, daemon=True).start()
while True:
    time.sleep(60)
PY
extra_pids="$extra_pids $!"

# One line per sample: seconds since the fill started, NDRs committed, NDRs sent to
# the sink, deliveries to live.
samples=$work/samples
printf '%8s %10s %8s %10s %8s %10s %8s\n' t committed "/s" sent "/s" live "/s"
previous=
while :; do
  kill -0 "$server_pid" 2>/dev/null || fail "the server died; see $work/server.log"
  page=$(curl -sf --max-time 60 "$admin/metrics") || { sleep 1; continue; }
  at=$(seconds_since "$filled")
  read -r depth sent live <<<"$(awk '
    /^postconn_queue_deliveries\{postoffice="dead"/ { depth += $2 }
    /^postconn_attempts_total\{postoffice="senders",outcome="delivered"/ { sent += $2 }
    /^postconn_attempts_total\{postoffice="live",outcome="delivered"/ { live += $2 }
    END { printf "%d %d %d\n", depth, sent, live }' <<<"$page")"
  committed=$((count - depth))
  echo "$at $committed $sent $live" >>"$samples"
  if [ -n "$previous" ]; then
    read -r p_at p_committed p_sent p_live <<<"$previous"
    awk -v t="$at" -v c="$committed" -v s="$sent" -v l="$live" \
      -v pt="$p_at" -v pc="$p_committed" -v ps="$p_sent" -v pl="$p_live" 'BEGIN {
        d = t - pt
        printf "%8.1f %10d %8.0f %10d %8.0f %10d %8.0f\n", t, c, (c - pc) / d, s,
          (s - ps) / d, l, (l - pl) / d }'
  fi
  previous="$at $committed $sent $live"
  ((committed >= count && sent >= count)) && break
  (($(awk -v t="$at" -v g="$give_up" 'BEGIN { print (t > g) }') == 0)) || {
    echo "gave up after ${give_up}s" >&2
    break
  }
  sleep "$sample"
done

awk -v n="$count" -v baseline="$baseline" '
  { t[NR] = $1; c[NR] = $2; s[NR] = $3; l[NR] = $4 }
  END {
    for (i = 1; i <= NR; i++) {
      if (!first && c[i] > 0) first = i
      if (!done && c[i] >= n) done = i
      if (!sent && s[i] >= n) sent = i
      if (i > 1 && c[i] > c[i - 1] && (c[i] - c[i - 1]) / (t[i] - t[i - 1]) > best)
        best = (c[i] - c[i - 1]) / (t[i] - t[i - 1])
      if (t[i] <= baseline) base = i
    }
    if (!first) { print "no NDR was committed"; exit }
    # The storm starts when the first deliveries fall due; live is measured
    # from the sample before the first commit.
    from = first > 1 ? first - 1 : first
    to = done ? done : NR
    secs = t[to] - baseline
    printf "NDRs committed: %d of %d in %.1fs from the moment they fell due: %.0f/s mean, best sample %.0f/s\n",
      c[to], n, secs, (secs > 0 ? c[to] / secs : 0), best
    if (done) printf "all NDRs committed %.1fs after the fill started (%.1fs after they began to fall due)\n", t[done], t[done] - baseline
    if (sent) printf "all NDRs at the sink %.1fs after the fill started\n", t[sent]
    else printf "NDRs at the sink: %d of %d at the end\n", s[NR], n
    if (base > 1) printf "live before the storm: %.0f delivered/s\n", (l[base] - l[1]) / (t[base] - t[1])
    if (t[to] > t[from]) printf "live during the storm: %.0f delivered/s\n", (l[to] - l[from]) / (t[to] - t[from])
  }' "$samples"
echo "memory: VmHWM $(mib "$(status_field "$server_pid" VmHWM)")," \
  "CPU $(ticks_to_seconds "$(cpu_ticks "$server_pid")")s in all"
