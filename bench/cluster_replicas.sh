#!/usr/bin/env bash
# cluster_replicas.sh -- what replicated acceptance costs: three cluster
# nodes with membership from etcd, cluster.replicas = 1 against 2, side by
# side in one run.
#
#   bench/cluster_replicas.sh [-n MESSAGES] [-s SESSIONS] [-r ROUNDS] [-k] [POSTCONN]
#
# Defaults: 6000 messages of about 1 KiB to 6 maildir postoffices, 2 SMTP
# sessions per node and postoffice, 2 rounds of both settings (alternating,
# so a change in the host's load shows in both). -k keeps the scratch
# directories.
#
# Each measurement starts a fresh etcd (Debian's etcd-server, on free
# loopback ports) and three fresh nodes sharing the postoffices. Once every
# node owns its share, Postfix's smtp-source sends the same number of
# messages to every node for every postoffice at once. Printed per
# measurement: accepted/s (until the last smtp-source is done), delivered/s
# (until the last file is in a maildir), and the CPU of the three postconn
# processes per 1,000 messages (utime+stime from /proc, from before the
# first message to the last delivery). With replicas = 2 each 250 waits for
# a second node's commit (an fsync there) and every change of a delivery
# goes to its replica's holder. Everything runs on this machine: the figures
# say what replication costs here, not what separate machines would see.
set -euo pipefail
export LC_ALL=C
source "$(dirname "$0")/bench_lib.sh"

messages=6000
postoffices=6
sessions=2
rounds=2
keep=
while getopts 'n:s:r:kh' opt; do
  case $opt in
    n) messages=$OPTARG ;;
    s) sessions=$OPTARG ;;
    r) rounds=$OPTARG ;;
    k) keep=1 ;;
    *) sed -n '6,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
postconn=$(resolve_binary "${1:-$source_dir/build/postconn}")
smtp_source=$(postfix_tool smtp-source)
command -v etcd >/dev/null || fail "etcd not found (Debian package etcd-server)"
nodes=3

server_pid=
extra_pids=
work=
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# owning ADMIN_PORT: whether the node at ADMIN_PORT sees every member and
# owns its share.
owning() {
  curl -sf --max-time 5 "http://127.0.0.1:$1/cluster" |
    python3 -c 'import json, sys; r = json.load(sys.stdin)
print(int(r["state"] == "owning" and len(r["members"]) == '"$nodes"'))' 2>/dev/null || echo 0
}

# start_etcd CLIENT_PORT PEER_PORT: a one-member etcd with its data in $work.
start_etcd() {
  local client="http://127.0.0.1:$1" peer="http://127.0.0.1:$2"
  etcd --name=default --data-dir="$work/etcd" --listen-client-urls="$client" \
    --advertise-client-urls="$client" --listen-peer-urls="$peer" \
    --initial-advertise-peer-urls="$peer" --initial-cluster="default=$peer" \
    --heartbeat-interval=10 --election-timeout=100 --log-level=error \
    >"$work/etcd.log" 2>&1 &
  extra_pids+=" $!"
  for _ in $(seq 200); do
    curl -sf --max-time 1 "$client/health" | grep -q '"true"' && return 0
    sleep 0.05
  done
  fail "etcd did not start (see $work/etcd.log)"
}

# run_cluster REPLICAS: one measurement; prints its line.
run_cluster() {
  local replicas=$1 i j start accepted_at pids=() ports=()
  work=$(mktemp -d "${TMPDIR:-/tmp}/postconn-replicas.XXXXXX")
  read -r -a ports <<<"$(free_ports $((3 * nodes + 2)))"
  local etcd_port=${ports[3 * nodes]}
  start_etcd "$etcd_port" "${ports[3 * nodes + 1]}"
  for ((j = 0; j < postoffices; j++)); do
    mkdir -p "$work/postoffices/po$j"
    touch "$work/postoffices/po$j/.postoffice"
  done
  for ((i = 0; i < nodes; i++)); do
    mkdir -p "$work/node$i"
    {
      cat <<TOML
[server]
hostname = "node$i.example.test"
data_dir = "var"
log_level = "warn"
[smtp]
listen = "127.0.0.1:${ports[3 * i]}"
[admin]
listen = "127.0.0.1:${ports[3 * i + 1]}"
[cluster]
node = "node$i"
listen = "127.0.0.1:${ports[3 * i + 2]}"
etcd = ["127.0.0.1:$etcd_port"]
lease_ttl = "2s"
replicas = $replicas
TOML
      for ((j = 0; j < postoffices; j++)); do
        maildir_postoffice "po$j" "$work/postoffices/po$j"
        echo 'create_mailboxes = true'
      done
    } >"$work/node$i/postconn.toml"
    (cd "$work/node$i" && exec "$postconn" serve --config postconn.toml 2>server.log) &
    pids+=($!)
    extra_pids+=" $!"
  done
  for ((i = 0; i < nodes; i++)); do
    for _ in $(seq 300); do
      [ "$(owning "${ports[3 * i + 1]}")" = 1 ] && break
      sleep 0.1
    done
    [ "$(owning "${ports[3 * i + 1]}")" = 1 ] || fail "node$i does not own its share"
  done

  local per_source=$((messages / (nodes * postoffices))) sources=() cpu_before=0 cpu_after=0
  for pid in "${pids[@]}"; do
    cpu_before=$((cpu_before + $(cpu_ticks "$pid")))
  done
  start=$(now)
  for ((i = 0; i < nodes; i++)); do
    for ((j = 0; j < postoffices; j++)); do
      "$smtp_source" -s "$sessions" -m "$per_source" -l 1024 -f bench@example.org \
        -t "rcpt@po$j.example.test" "127.0.0.1:${ports[3 * i]}" &
      sources+=($!)
    done
  done
  wait "${sources[@]}"
  accepted_at=$(seconds_since "$start")
  local total=$((per_source * nodes * postoffices)) took
  until [ "$(delivered_files "$work/postoffices")" -ge "$total" ]; do
    sleep 0.05
  done
  took=$(seconds_since "$start")
  for pid in "${pids[@]}"; do
    cpu_after=$((cpu_after + $(cpu_ticks "$pid")))
  done
  awk -v r="$replicas" -v t="$total" -v a="$accepted_at" -v d="$took" \
    -v c="$((cpu_after - cpu_before))" -v hz="$ticks_per_second" 'BEGIN {
    printf "replicas = %d: %d messages, accepted %.0f msg/s, delivered %.0f msg/s (%.2fs), %.3f CPU s per 1,000\n",
           r, t, t / a, t / d, d, c / hz / t * 1000 }'

  # The nodes before etcd, so they revoke their leases; a node that has not
  # exited 30 s after SIGTERM is named and killed.
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "warning: node pid $pid had not exited 30 s after SIGTERM; killed" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in $extra_pids; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  extra_pids=
  if [ -n "$keep" ]; then
    echo "kept $work" >&2
  else
    rm -rf "$work"
  fi
  work=
}

echo "cluster_replicas: $messages messages to $postoffices maildir postoffices on $nodes nodes," \
  "$sessions sessions per node and postoffice, $rounds round(s); $(nproc) CPUs"
for ((round = 0; round < rounds; round++)); do
  run_cluster 1
  run_cluster 2
done
