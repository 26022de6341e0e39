#!/usr/bin/env bash
# vs_postfix.sh -- postconn against Postfix and against the raw ceiling, in
# one run on this machine, with the same load and the same destination.
#
#   bench/vs_postfix.sh [-m MESSAGES] [-l BYTES] [-s SESSIONS] [-d] [-p POSTOFFICES] [POSTCONN]
#
# Defaults: 5000 messages of 2048 bytes over 20 parallel sessions, a new
# connection per message (-d: smtp-source keeps its connections), every
# message to one domain (-p N: spread evenly over N domains, which postconn
# routes to N postoffices, all at the same sink; MESSAGES must be a multiple
# of N). POSTCONN is the postconn binary (default: $POSTCONN; without
# either, ./build.sh build runs and build/postconn is used). Run it as
# root: Postfix's master must start as root (without root the Postfix case
# is skipped).
#
# Three cases, one after the other, each from a clean state, each ending at
# a fresh Postfix smtp-sink on a loopback port:
#
#   raw       smtp-source straight into smtp-sink: the ceiling of the load
#             generator and the sink on this machine
#   postfix   a private Postfix instance (own config and queue directories
#             under a temporary directory, default durability: the queue
#             file is fsync'd before the 250), relaying everything to the
#             sink (relayhost), no local delivery, no DNS
#   postconn  `postconn serve` with one smtp postoffice (or N) whose address
#             is the sink (fsync'd queue, as always)
#
# The load is `smtp-source -s SESSIONS -m MESSAGES -l BYTES`; with -p N it is
# N runs of `smtp-source -s 1 -m MESSAGES/N` to one domain each, SESSIONS of
# them at a time (smtp-source sends to one recipient address). For each case:
# accepted msg/s = MESSAGES / time until smtp-source has finished (every 250
# received), delivered msg/s = MESSAGES / time until the sink has received
# the last message. smtp-sink runs with -c and bench/vs_postfix/sink.py reads
# its counter from a pipe and notes the moment it reaches MESSAGES, so the
# end of delivery is timed without polling; afterwards the MTA's queue must
# drain to empty (a duplicate delivery would show there). For the MTAs also
# CPU seconds per 1,000 messages (utime+stime from /proc, from the start of
# the load to the last delivery; for Postfix summed over master and all its
# processes), and for postconn its peak RSS (VmHWM).
#
# Nothing outside the temporary directory is changed: the system's Postfix
# instance and its config directory are only read (master.cf is copied).
# Everything started here is stopped, and the directory removed, on exit.
set -euo pipefail
export LC_ALL=C

source "$(dirname "$0")/bench_lib.sh"

messages=5000
bytes=2048
sessions=20
reuse=()
postoffices=1

usage() {
  sed -n '5,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while getopts 'm:l:s:dp:h' opt; do
  case $opt in
    m) messages=$OPTARG ;;
    l) bytes=$OPTARG ;;
    s) sessions=$OPTARG ;;
    d) reuse=(-d) ;;
    p) postoffices=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
(($# <= 1)) || usage
for n in "$messages" "$bytes" "$sessions" "$postoffices"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || usage
done
((messages % postoffices == 0)) || fail "-m $messages is not a multiple of -p $postoffices"

# --- tools ------------------------------------------------------------------

find_tool() {
  local found
  found=$(PATH=$PATH:/usr/sbin:/usr/lib/postfix/sbin command -v "$1") || return 1
  echo "$found"
}

install_postfix_when_missing() {
  find_tool smtp-source >/dev/null && find_tool postfix >/dev/null && return 0
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  echo "vs_postfix: installing postfix (smtp-source, smtp-sink, postfix)" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends postfix >&2
}

find_postconn() {
  local binary=${1:-${POSTCONN:-}}
  if [ -z "$binary" ]; then
    "$source_dir/build.sh" build >/dev/null
    binary=$source_dir/${BUILD_DIR:-build}/postconn
  fi
  [ -x "$binary" ] || fail "no postconn binary at $binary"
  (cd "$(dirname "$binary")" && echo "$PWD/$(basename "$binary")")
}

install_postfix_when_missing
smtp_source=$(find_tool smtp-source) || fail "smtp-source not found (Debian package postfix)"
smtp_sink=$(find_tool smtp-sink) || fail "smtp-sink not found (Debian package postfix)"
python=$(command -v python3) || fail "python3 not found"
postfix=$(find_tool postfix) || postfix=
postconf=$(find_tool postconf) || postconf=
postconn=$(find_postconn "${1:-}")
ticks_per_second=$(getconf CLK_TCK)
# smtp-sink refuses to run as root without a user to switch to.
sink_user=()
[ "$(id -u)" != 0 ] || sink_user=(-u nobody)

# --- state, cleanup -----------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/postconn-vs-postfix.XXXXXX")
chmod 755 "$work" # the Postfix daemons and smtp-sink run as other users
sink_pid=
load_pid=
postconn_pid=
postfix_dir=

stop_pid() {
  local pid=$1 waited
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for waited in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  [ -z "$load_pid" ] || stop_pid "$load_pid"
  [ -z "$postconn_pid" ] || stop_pid "$postconn_pid"
  [ -z "$postfix_dir" ] || stop_postfix
  [ -z "$sink_pid" ] || stop_pid "$sink_pid"
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- helpers ------------------------------------------------------------------

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for_port PORT PID WHAT: until PORT accepts; fails when PID has died.
wait_for_port() {
  local port=$1 pid=$2 what=$3 tries
  for tries in $(seq 300); do
    port_open "$port" && return 0
    kill -0 "$pid" 2>/dev/null || fail "$what exited before listening on port $port"
    sleep 0.05
  done
  fail "$what does not listen on port $port after 15s"
}

seconds_between() {
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'
}

per_second() {
  awk -v n="$messages" -v s="$1" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'
}

# process_tree_ticks PID: PID with its reaped children, plus every live child.
process_tree_ticks() {
  local root=$1 total stat fields proc
  total=$(cpu_ticks "$root" children)
  for proc in /proc/[0-9]*; do
    stat=$(<"$proc/stat") 2>/dev/null || continue
    read -r -a fields <<<"${stat##*) }"
    ((fields[1] == root)) && total=$((total + fields[11] + fields[12]))
  done
  echo "$total"
}

# cpu_busy_percent: how busy all CPUs were over the next second.
cpu_busy_percent() {
  local before after
  before=$(head -n 1 /proc/stat)
  sleep 1
  after=$(head -n 1 /proc/stat)
  awk -v a="$before" -v b="$after" 'BEGIN {
    split(a, x); split(b, y)
    for (i = 2; i <= 9; i++) total += y[i] - x[i]
    idle = y[5] - x[5] + y[6] - x[6]
    printf "%.0f", (total > 0 ? 100 * (total - idle) / total : 0) }'
}

cpu_per_thousand() {
  awk -v t="$1" -v hz="$ticks_per_second" -v n="$messages" \
    'BEGIN { printf "%.3f", t / hz / n * 1000 }'
}

# --- the sink and the load ------------------------------------------------------

# start_sink CASE PORT: a fresh smtp-sink whose counter sink.py watches.
start_sink() {
  local case=$1 port=$2
  "$python" "$bench_dir/vs_postfix/sink.py" "$messages" "$work/$case/delivered" \
    "$smtp_sink" "${sink_user[@]}" "127.0.0.1:$port" 256 &
  sink_pid=$!
  wait_for_port "$port" "$sink_pid" smtp-sink
}

stop_sink() {
  stop_pid "$sink_pid"
  sink_pid=
}

# run_load PORT: smtp-source against PORT; sets load_start and load_end.
run_load() {
  local port=$1 status=0
  load_start=$EPOCHREALTIME
  source_load "$smtp_source" "$port" &
  load_pid=$!
  wait "$load_pid" || status=$?
  load_end=$EPOCHREALTIME
  load_pid=
  ((status == 0)) || fail "smtp-source failed (exit $status)"
}

# wait_delivered CASE PID...: until the sink has every message; fails when
# one of the PIDs (the MTA) dies or after a generous timeout.
wait_delivered() {
  local case=$1 deadline pid
  shift
  deadline=$((SECONDS + 120 + messages / 10))
  until [ -e "$work/$case/delivered" ]; do
    for pid in "$@"; do
      kill -0 "$pid" 2>/dev/null || fail "$case: the MTA (pid $pid) died during the run"
    done
    ((SECONDS < deadline)) ||
      fail "$case: the sink has $(cat "$work/$case/delivered.count" 2>/dev/null || echo 0)" \
        "of $messages messages after $((120 + messages / 10))s"
    sleep 0.05
  done
  delivered_at=$(<"$work/$case/delivered")
}

# wait_drained CASE COMMAND...: until COMMAND prints 0 (messages still queued).
wait_drained() {
  local case=$1 left tries
  shift
  for tries in $(seq 100); do
    left=$("$@")
    ((left == 0)) && return 0
    sleep 0.1
  done
  fail "$case: the sink has all $messages messages but $left are still queued" \
    "(duplicate deliveries?)"
}

declare -A accepted_secs delivered_secs cpu_1000 peak_rss skipped

record() {
  local case=$1
  accepted_secs[$case]=$(seconds_between "$load_start" "$load_end")
  delivered_secs[$case]=$(seconds_between "$load_start" "$delivered_at")
  printf '%-9s accepted in %ss (%s msg/s), delivered in %ss (%s msg/s)\n' "$case" \
    "${accepted_secs[$case]}" "$(per_second "${accepted_secs[$case]}")" \
    "${delivered_secs[$case]}" "$(per_second "${delivered_secs[$case]}")"
}

# --- case 1: raw ------------------------------------------------------------------

run_raw() {
  local sink_port
  mkdir "$work/raw"
  read -r sink_port <<<"$(free_ports 1)"
  start_sink raw "$sink_port"
  sync
  run_load "$sink_port"
  wait_delivered raw "$sink_pid"
  stop_sink
  record raw
}

# --- case 2: Postfix ----------------------------------------------------------------

postfix_cmd() {
  "$postfix" -c "$postfix_dir/etc" "$@"
}

postfix_master_pid() {
  local pid
  read -r pid 2>/dev/null <"$postfix_dir/spool/pid/master.pid" || return 1
  echo "$pid"
}

postfix_queued() {
  find "$postfix_dir/spool/incoming" "$postfix_dir/spool/active" \
    "$postfix_dir/spool/deferred" "$postfix_dir/spool/hold" -type f | wc -l
}

# configure_postfix SMTPD_PORT SINK_PORT: a private instance in $postfix_dir.
# main.cf starts from Postfix's built-in defaults, so local settings of the
# system's main.cf (content filters, milters, DNS blocklists) cannot leak in;
# master.cf is the system's, with every inet service replaced by one smtpd
# on 127.0.0.1:SMTPD_PORT and no chroot (the private queue has no copy of
# /etc for one). Durability is Postfix's default.
configure_postfix() {
  local smtpd_port=$1 sink_port=$2 etc=$postfix_dir/etc system_etc service
  system_etc=$("$postconf" -dh config_directory)
  mkdir -p "$etc" "$postfix_dir/spool" "$postfix_dir/data"
  chown postfix "$postfix_dir/data"
  : >"$etc/main.cf"
  cp "$system_etc/master.cf" "$etc/master.cf"
  "$postconf" -c "$etc" -e \
    "compatibility_level = 3.6" \
    "queue_directory = $postfix_dir/spool" \
    "data_directory = $postfix_dir/data" \
    "mail_owner = postfix" \
    "setgid_group = postdrop" \
    "syslog_name = postfix-bench" \
    "maillog_file = $postfix_dir/maillog" \
    "maillog_file_prefixes = $postfix_dir" \
    "inet_interfaces = 127.0.0.1" \
    "inet_protocols = ipv4" \
    "myhostname = postfix.bench.example.test" \
    "mydomain = bench.example.test" \
    "mydestination =" \
    "local_recipient_maps =" \
    "local_transport = error:5.1.1 local delivery is disabled" \
    "alias_maps =" \
    "alias_database =" \
    "mynetworks = 127.0.0.0/8" \
    "smtpd_relay_restrictions = permit_mynetworks, reject" \
    "relayhost = [127.0.0.1]:$sink_port" \
    "smtp_host_lookup = native" \
    "disable_dns_lookups = yes" \
    "smtpd_peername_lookup = no" \
    "smtpd_tls_security_level = none" \
    "smtp_tls_security_level = none"
  for service in $("$postconf" -c "$etc" -M | awk '$2 == "inet" { print $1 "/inet" }'); do
    "$postconf" -c "$etc" -M# "$service"
  done
  "$postconf" -c "$etc" -Me "$smtpd_port/inet = $smtpd_port inet n - n - - smtpd"
  [ -n "$("$postconf" -c "$etc" -M postlog/unix-dgram 2>/dev/null)" ] ||
    "$postconf" -c "$etc" -Me "postlog/unix-dgram = postlog unix-dgram n - n - 1 postlogd"
  "$postconf" -c "$etc" -F '*/*/chroot = n'
}

# postfix_unavailable: why this instance cannot run here, or nothing.
postfix_unavailable() {
  [ -n "$postfix" ] || { echo "the postfix command is not installed"; return; }
  [ -n "$postconf" ] || { echo "the postconf command is not installed"; return; }
  [ "$(id -u)" = 0 ] ||
    { echo "postfix start needs root (master binds its ports, then its daemons switch to mail_owner)"; return; }
  getent passwd postfix >/dev/null || { echo "there is no user postfix (mail_owner)"; return; }
  getent group postdrop >/dev/null || { echo "there is no group postdrop (setgid_group)"; return; }
}

stop_postfix() {
  local master pids=() proc stat fields
  master=$(postfix_master_pid) || { postfix_dir=; return 0; }
  if kill -0 "$master" 2>/dev/null; then
    for proc in /proc/[0-9]*; do
      stat=$(<"$proc/stat") 2>/dev/null || continue
      read -r -a fields <<<"${stat##*) }"
      ((fields[1] == master)) && pids+=("${proc#/proc/}")
    done
    postfix_cmd stop 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$master" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$master" 2>/dev/null && { postfix_cmd abort 2>/dev/null || kill -KILL "$master"; }
    # Its daemons leave once the master is gone; those that linger are told to.
    for proc in "${pids[@]}"; do
      stop_pid "$proc"
    done
  fi
  postfix_dir=
}

run_postfix() {
  local smtpd_port sink_port problem master before after
  problem=$(postfix_unavailable)
  if [ -n "$problem" ]; then
    skipped[postfix]=$problem
    echo "postfix   SKIPPED: $problem"
    return 0
  fi
  postfix_dir=$work/postfix
  read -r smtpd_port sink_port <<<"$(free_ports 2)"
  configure_postfix "$smtpd_port" "$sink_port"
  if ! problem=$(postfix_cmd check 2>&1) || ! problem=$(postfix_cmd start 2>&1); then
    problem="postfix refuses to start: $problem $(tail -n 5 "$postfix_dir/maillog" 2>/dev/null)"
    skipped[postfix]=$(echo "$problem" | tr '\n' ' ')
    echo "postfix   SKIPPED: ${skipped[postfix]}"
    stop_postfix
    return 0
  fi
  master=$(postfix_master_pid) || fail "postfix: no master.pid after start"
  mail_version=$("$postconf" -c "$postfix_dir/etc" -h mail_version)
  start_sink postfix "$sink_port"
  wait_for_port "$smtpd_port" "$master" "the Postfix master"
  sync
  before=$(process_tree_ticks "$master")
  run_load "$smtpd_port"
  wait_delivered postfix "$master"
  after=$(process_tree_ticks "$master")
  wait_drained postfix postfix_queued
  stop_postfix
  stop_sink
  cpu_1000[postfix]=$(cpu_per_thousand $((after - before)))
  record postfix
}

# --- case 3: postconn --------------------------------------------------------------

postconn_queued() {
  "$python" - "$1" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen("http://127.0.0.1:%s/queue?limit=1" % sys.argv[1], timeout=10) as r:
    print(json.load(r)["total"])
PY
}

run_postconn() {
  local dir=$work/postconn smtp_port admin_port sink_port before after
  mkdir "$dir"
  read -r smtp_port admin_port sink_port <<<"$(free_ports 3)"
  relay_config "$smtp_port" "$admin_port" "$sink_port" >"$dir/postconn.toml"
  ((postoffices == 1)) || spread_postoffices "$sink_port" >>"$dir/postconn.toml"
  start_sink postconn "$sink_port"
  (cd "$dir" && exec "$postconn" serve --config postconn.toml) 2>"$dir/postconn.log" &
  postconn_pid=$!
  wait_for_port "$smtp_port" "$postconn_pid" "postconn"
  sync
  before=$(cpu_ticks "$postconn_pid")
  run_load "$smtp_port"
  wait_delivered postconn "$postconn_pid"
  after=$(cpu_ticks "$postconn_pid")
  peak_rss[postconn]=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$postconn_pid/status")
  wait_drained postconn postconn_queued "$admin_port"
  stop_pid "$postconn_pid"
  postconn_pid=
  stop_sink
  cpu_1000[postconn]=$(cpu_per_thousand $((after - before)))
  record postconn
}

# --- report ---------------------------------------------------------------------

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }'
}

print_table() {
  local case name
  echo
  printf '%-22s %10s %10s %10s %10s %12s %10s\n' "" accepted accepted delivered delivered \
    "CPU s per" "peak RSS"
  printf '%-22s %10s %10s %10s %10s %12s %10s\n' case seconds "msg/s" seconds "msg/s" \
    "1000 msgs" MB
  for case in raw postfix postconn; do
    case $case in
      raw) name="raw (source -> sink)" ;;
      postfix) name="postfix ${mail_version:-}" ;;
      postconn) name="postconn" ;;
    esac
    if [ -n "${skipped[$case]:-}" ]; then
      printf '%-22s %s\n' "$name" "skipped: ${skipped[$case]}"
      continue
    fi
    printf '%-22s %10s %10s %10s %10s %12s %10s\n' "$name" \
      "${accepted_secs[$case]}" "$(per_second "${accepted_secs[$case]}")" \
      "${delivered_secs[$case]}" "$(per_second "${delivered_secs[$case]}")" \
      "${cpu_1000[$case]:--}" "${peak_rss[$case]:--}"
  done
  echo
  if [ -z "${skipped[postfix]:-}" ]; then
    echo "postconn / postfix, delivered msg/s: $(ratio "${delivered_secs[postconn]}" \
      "${delivered_secs[postfix]}")   accepted msg/s: $(ratio "${accepted_secs[postconn]}" \
      "${accepted_secs[postfix]}")"
    echo "postfix / postconn, CPU per message: $(ratio "${cpu_1000[postconn]}" \
      "${cpu_1000[postfix]}")"
  fi
  echo "postconn / raw,     delivered msg/s: $(ratio "${delivered_secs[postconn]}" \
    "${delivered_secs[raw]}")"
}

echo "postconn vs Postfix: $messages messages of $bytes bytes, $sessions sessions," \
  "$([ ${#reuse[@]} -gt 0 ] && echo "connections reused (-d)" || echo "a connection per message")," \
  "$postoffices postoffice(s)"
echo "$(nproc) CPUs, $(uname -sr), queues on $(df -P "$work" | awk 'NR == 2 { print $1 }')" \
  "($(stat -f -c %T "$work")); $("$postconn" --version)"
echo "CPUs busy before the run: $(cpu_busy_percent)%" \
  "(other work on this machine makes the figures noisy)"
run_raw
run_postfix
run_postconn
print_table
