#!/usr/bin/env bash
# many_postoffices.sh -- `postconn serve` with N maildir postoffices, most
# idle, some unreachable: start-up time, memory, idle probing CPU and how
# evenly the probes spread over open_interval.
#
#   bench/many_postoffices.sh [-n COUNT] [-u PERCENT] [-i SECONDS] [-R SECONDS] [-r ROUNDS] [-k] [POSTCONN]
#
# Defaults: 100000 postoffices, 1 % of them unreachable (no directory),
# open_interval 60 s, recovery_probe_interval 10 s (-R; 0: an unreachable
# postoffice is probed every open_interval too), CPU measured over 2
# intervals; POSTCONN defaults to build/postconn. -k keeps the scratch
# directory. A quick run:
#   bench/many_postoffices.sh -n 10000 -i 20
#
# Each reachable postoffice is a directory with the marker .postoffice and
# one mailbox; no mail is sent. Reported:
#   start-up   until the SMTP port answers 220, and until every postoffice
#              has been probed once (a maildir probe creates and removes a
#              file in the root, which moves the root's mtime; an
#              unreachable one logs "unreachable" on its first probe)
#   memory     VmRSS after start-up and VmHWM (peak) at the end
#   idle CPU   utime+stime over ROUNDS intervals, as CPU seconds, as a
#              share of one core, and per probe: each reachable postoffice
#              probed once per interval, each unreachable one once per
#              recovery_probe_interval (when set and shorter)
#   spread     the roots' mtimes after the CPU window: probes per second
#              over the last interval (each root is probed once per
#              interval), min / mean / max and the busiest seconds
# Targets: RSS <= 1 GiB, 220 within 10 s (issue 22: RSS <= 300 MiB, idle
# CPU <= 50 µs per probe).
set -euo pipefail
export LC_ALL=C
source "$(dirname "$0")/bench_lib.sh"

count=100000
unreachable_percent=1
interval=60
recovery=10
rounds=2
keep=
while getopts 'n:u:i:R:r:kh' opt; do
  case $opt in
    n) count=$OPTARG ;;
    u) unreachable_percent=$OPTARG ;;
    i) interval=$OPTARG ;;
    R) recovery=$OPTARG ;;
    r) rounds=$OPTARG ;;
    k) keep=1 ;;
    *) sed -n '6,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
postconn=$(resolve_binary "${1:-$source_dir/build/postconn}")

bench_start many-po
read -r smtp_port admin_port <<<"$(free_ports 2)"

# --- postoffices and config ---------------------------------------------------

started=$(now)
python3 - "$work" "$count" "$unreachable_percent" "$interval" "$smtp_port" "$admin_port" \
  "$recovery" <<'PY'
import os, sys
work, count, percent, interval, smtp, admin, recovery = sys.argv[1], int(sys.argv[2]), \
    float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], int(sys.argv[7])
every = int(round(100 / percent)) if percent > 0 else 0
root = os.path.join(work, "po")
os.mkdir(root)
with open(os.path.join(work, "postconn.toml"), "w") as cfg, \
     open(os.path.join(work, "reachable"), "w") as reachable:
    cfg.write(f"""[server]
hostname = "bench.example.test"
data_dir = "var"
log_level = "info"
[smtp]
listen = "127.0.0.1:{smtp}"
[retry]
open_interval = "{interval}s"
recovery_probe_interval = "{recovery}s"
[admin]
listen = "127.0.0.1:{admin}"
""")
    for i in range(count):
        name = f"po{i:06d}"
        path = os.path.join(root, name)
        cfg.write(f'[[postoffice]]\nname = "{name}"\ndomains = ["{name}.example.test"]\n'
                  f'transport = "maildir"\npath = "{path}"\n')
        if every and i % every == every - 1:
            continue  # unreachable: the directory is missing
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(path, "bob", sub))
        open(os.path.join(path, ".postoffice"), "w").close()
        reachable.write(path + "\n")
PY
reachable=$(wc -l <"$work/reachable")
unreachable=$((count - reachable))
echo "many_postoffices: $count maildir postoffices ($unreachable unreachable)," \
  "open_interval ${interval}s, recovery_probe_interval ${recovery}s;" \
  "generated in $(seconds_since "$started")s"
echo "config: $(du -h "$work/postconn.toml" | cut -f1)"

# count_probed SINCE: reachable roots whose mtime is at or after SINCE.
count_probed() {
  python3 - "$work/reachable" "$1" <<'PY'
import os, sys
since = float(sys.argv[2])
print(sum(1 for p in open(sys.argv[1]).read().split() if os.stat(p).st_mtime >= since))
PY
}

unreachable_logged() {
  grep -c ': unreachable (' "$work/server.log" || true
}

# --- start-up -------------------------------------------------------------------

sync
start=$(now)
(cd "$work" && exec "$postconn" serve --config postconn.toml 2>server.log) &
server_pid=$!
wait_for_banner "$smtp_port" "$server_pid" 300 || fail "no banner; see the log:
$(tail -5 "$work/server.log")"
banner_secs=$(seconds_since "$start")
rss_after_start=$(status_field "$server_pid" VmRSS)
echo "start-up: 220 after ${banner_secs}s (RSS then $(mib "$rss_after_start")," \
  "$(status_field "$server_pid" Threads) threads)"

deadline=$((SECONDS + 2 * interval + 60))
while :; do
  probed=$(count_probed "$start")
  logged=$(unreachable_logged)
  ((probed < reachable || logged < unreachable)) || break
  if ((SECONDS >= deadline)); then
    echo "start-up: NOT every postoffice probed: after $(seconds_since "$start")s $probed of" \
      "$reachable reachable roots were probed, and $logged 'unreachable' lines logged" \
      "for $unreachable unreachable postoffices"
    break
  fi
  sleep 1
done
((SECONDS >= deadline)) ||
  echo "start-up: every postoffice probed once after $(seconds_since "$start")s" \
    "(open_interval ${interval}s: the first probes are spread over it)"

# --- idle probing -----------------------------------------------------------------

window=$((rounds * interval))
cpu_before=$(cpu_ticks "$server_pid")
window_start=$(now)
sleep "$window"
cpu_ticks_used=$(($(cpu_ticks "$server_pid") - cpu_before))
window_secs=$(seconds_since "$window_start")
window_end=$(now)
cpu_secs=$(ticks_to_seconds "$cpu_ticks_used")
# Probes in the window: the reachable once per interval, the unreachable
# once per recovery_probe_interval when that is set and shorter.
down_every=$interval
((recovery > 0 && recovery < interval)) && down_every=$recovery
probes=$(awk -v r="$reachable" -v u="$unreachable" -v w="$window" -v i="$interval" \
  -v d="$down_every" 'BEGIN { printf "%d", r * w / i + u * w / d }')
echo "idle: $cpu_secs CPU seconds in ${window_secs}s ($rounds intervals):" \
  "$(awk -v c="$cpu_secs" -v w="$window_secs" 'BEGIN { printf "%.1f", 100 * c / w }') % of one core," \
  "$probes probes, $(awk -v c="$cpu_secs" -v p="$probes" 'BEGIN { printf "%.1f", 1e6 * c / p }') µs per probe"

python3 - "$work/reachable" "$window_end" "$interval" <<'PY'
import os, sys
paths = open(sys.argv[1]).read().split()
end, interval = float(sys.argv[2]), int(sys.argv[3])
buckets = [0] * interval
for p in paths:
    age = end - os.stat(p).st_mtime
    if 0 <= age < interval:
        buckets[interval - 1 - int(age)] += 1
seen = sum(buckets)
mean = seen / interval
print(f"spread: {seen} of {len(paths)} reachable roots probed in the last {interval}s; "
      f"per second min {min(buckets)} mean {mean:.0f} max {max(buckets)} "
      f"(max/mean {max(buckets) / mean if mean else 0:.2f})")
for row in range(0, interval, 10):
    print(f"  s{row:>3}-{min(row + 9, interval - 1):<3} "
          + " ".join(f"{n:5d}" for n in buckets[row:row + 10]))
PY

echo "problems logged (postoffice names left out):"
sed -n 's/.*postoffice [a-z0-9_-]*: unreachable (\(.*\))$/\1/p' "$work/server.log" |
  sed 's/[0-9]\{2,\}/N/g' | sort | uniq -c | sort -rn | head -5
echo "memory: VmRSS $(mib "$(status_field "$server_pid" VmRSS)")," \
  "peak VmHWM $(mib "$(status_field "$server_pid" VmHWM)")," \
  "$(status_field "$server_pid" Threads) threads"
stop_started=$(now)
stop_server
echo "shutdown: $(seconds_since "$stop_started")s after SIGTERM"
