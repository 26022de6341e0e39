# bench_lib.sh -- helpers shared by the benchmarks (sourced, not run).
# bench_start makes the scratch directory `work` and has bench_cleanup run
# on exit; the caller keeps `server_pid` (empty while no server runs) and
# `extra_pids` (load generators, sinks) up to date.

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(dirname "$bench_dir")
ticks_per_second=$(getconf CLK_TCK)
PATH=$PATH:/usr/sbin:/usr/lib/postfix/sbin

fail() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

# resolve_binary PATH: PATH made absolute, or fail.
resolve_binary() {
  [ -x "$1" ] || fail "no postconn binary at $1 (build it, or pass its path)"
  (cd "$(dirname "$1")" && echo "$PWD/$(basename "$1")")
}

# postfix_tool NAME: the path of Postfix's NAME (smtp-source, smtp-sink),
# or the run stops.
postfix_tool() {
  command -v "$1" || fail "$1 not found (Debian package postfix)"
}

# queue_fill_binary POSTCONN [QUEUE_FILL]: QUEUE_FILL, by default the one
# built next to POSTCONN.
queue_fill_binary() {
  resolve_binary "${2:-$(dirname "$1")/bench/queue_fill}"
}

now() {
  echo "$EPOCHREALTIME"
}

seconds_since() {
  awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'
}

free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# wait_for_banner PORT PID TIMEOUT: until a connection to PORT reads a 220
# greeting (the port is bound before the queue is read, so a connect alone
# proves nothing); fails when PID dies or after TIMEOUT seconds.
wait_for_banner() {
  python3 - "$@" <<'PY'
import os, socket, sys, time
port, pid, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.time() + timeout
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("the server exited before greeting")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.settimeout(max(0.1, deadline - time.time()))
            if s.recv(512).startswith(b"220"):
                s.sendall(b"QUIT\r\n")
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.02)
sys.exit(f"no 220 on port {port} after {timeout:.0f}s")
PY
}

# cpu_ticks PID [children]: utime+stime of PID in clock ticks (with
# "children", also the children it has reaped).
cpu_ticks() {
  local stat fields
  stat=$(<"/proc/$1/stat") || return 1
  read -r -a fields <<<"${stat##*) }"
  if [ "${2:-}" = children ]; then
    echo $((fields[11] + fields[12] + fields[13] + fields[14]))
  else
    echo $((fields[11] + fields[12]))
  fi
}

# relay_config SMTP_PORT ADMIN_PORT SINK_PORT [slow]: postconn's config
# relaying all mail to an smtp-sink on SINK_PORT. With "slow" (under
# valgrind, ~50 times slower) it logs only warnings and gives sessions and
# the sink generous timeouts.
relay_config() {
  local log_level= idle_timeout= probe_timeout=
  if [ "${4:-}" = slow ]; then
    log_level='log_level = "warn"'
    idle_timeout='idle_timeout = "600s"'
    probe_timeout='probe_timeout = "120s"'
  fi
  cat <<TOML
[server]
hostname = "postconn.bench.example.test"
data_dir = "var"
$log_level

[smtp]
listen = "127.0.0.1:$1"
relay_networks = ["127.0.0.0/8"]
$idle_timeout

[admin]
listen = "127.0.0.1:$2"

[[postoffice]]
name = "sink"
domains = ["relay.example.test"]
transport = "smtp"
address = "127.0.0.1:$3"
$probe_timeout
TOML
}

# source_load SMTP_SOURCE PORT: the load of vs_postfix.sh and
# perf_threads.sh: $messages messages of $bytes bytes over $sessions
# smtp-source sessions (with the options in the array reuse: -d keeps the
# connections) to bob@relay.example.test; with $postoffices above 1, spread
# over the domains po1 ... poN.example.test, one smtp-source run of
# MESSAGES/N per domain, $sessions runs at a time.
source_load() {
  if ((postoffices == 1)); then
    "$1" "${reuse[@]}" -s "$sessions" -m "$messages" -l "$bytes" \
      -f ann@client.example.test -t bob@relay.example.test -M client.example.test \
      "127.0.0.1:$2"
  else
    seq "$postoffices" | xargs -P "$sessions" -I '{}' "$1" "${reuse[@]}" -s 1 \
      -m "$((messages / postoffices))" -l "$bytes" -f ann@client.example.test \
      -t 'bob@po{}.example.test' -M client.example.test "127.0.0.1:$2"
  fi
}

# spread_postoffices SINK_PORT [slow]: the config tables of the smtp
# postoffices po1 ... po$postoffices taking the domains of source_load's
# spread load, each at the sink on SINK_PORT; with "slow" (valgrind) each
# step may take 120 s.
spread_postoffices() {
  local n
  for n in $(seq "$postoffices"); do
    printf '\n[[postoffice]]\nname = "po%s"\ndomains = ["po%s.example.test"]\n' "$n" "$n"
    printf 'transport = "smtp"\naddress = "127.0.0.1:%s"\n' "$1"
    [ "${2:-}" != slow ] || printf 'probe_timeout = "120s"\n'
  done
}

# maildir_postoffice NAME PATH: the config table of a maildir postoffice
# NAME at PATH taking the domain NAME.example.test.
maildir_postoffice() {
  cat <<TOML
[[postoffice]]
name = "$1"
domains = ["$1.example.test"]
transport = "maildir"
path = "$2"
TOML
}

# delivered_files DIR: the files in every maildir new/ below DIR.
delivered_files() {
  find "$1" -path '*/new/*' -type f | wc -l
}

ticks_to_seconds() {
  awk -v t="$1" -v hz="$ticks_per_second" 'BEGIN { printf "%.2f", t / hz }'
}

# status_field PID FIELD: a /proc/PID/status value (VmHWM, VmRSS, Threads).
status_field() {
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

mib() {
  awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'
}

# metric URL NAME [LABELS]: the sum of the samples of NAME whose labels
# contain LABELS (e.g. 'status="5.4.1"'), 0 when there is none.
metric() {
  curl -sf --max-time 30 "$1/metrics" | awk -v name="$2" -v labels="${3:-}" '
    { split($1, key, "{") }
    key[1] == name && index($1, labels) { sum += $2 }
    END { printf "%.0f\n", sum }'
}

stop_server() {
  [ -n "${server_pid:-}" ] || return 0
  local waited
  kill -TERM "$server_pid" 2>/dev/null || true
  for waited in $(seq 300); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# bench_start NAME: a fresh scratch directory in $work, removed on exit
# (kept with keep=1), with the server and helpers stopped.
bench_start() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/postconn-$1.XXXXXX")
  server_pid=
  extra_pids=
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

bench_cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  # The helpers first (load generators, sinks), so they see no shutdown.
  for pid in ${extra_pids:-}; do
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  stop_server
  if [ -n "${keep:-}" ]; then
    echo "kept $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$status"
}
