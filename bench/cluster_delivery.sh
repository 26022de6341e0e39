#!/usr/bin/env bash
# cluster_delivery.sh -- delivered messages per second with 1, 2 and 3
# cluster nodes on this machine.
#
#   bench/cluster_delivery.sh [-n MESSAGES] [-p POSTOFFICES] [-s SESSIONS] [-k] [POSTCONN]
#
# Defaults: 6000 messages of about 1 KiB to 6 maildir postoffices, 2 SMTP
# sessions per node and postoffice. -k keeps the scratch directories.
#
# For each cluster size, fresh nodes (own queue each, [cluster] with every
# other node as seed) share the postoffices, which rendezvous hashing spreads
# over them. Once every node sees all members, Postfix's smtp-source sends
# the same number of messages to every node for every postoffice at once,
# so with N nodes about (N-1)/N of the mail is handed from the accepting
# node to the owner before it is delivered. Printed per size: accepted/s
# (until the last smtp-source is done), delivered/s (until the last file is
# in a maildir), and how many deliveries were handed over. All nodes run on
# this machine and share its CPUs and disk: the figure says what the
# cluster machinery costs, not what separate machines would gain.
set -euo pipefail
export LC_ALL=C
source "$(dirname "$0")/bench_lib.sh"

messages=6000
postoffices=6
sessions=2
keep=
while getopts 'n:p:s:kh' opt; do
  case $opt in
    n) messages=$OPTARG ;;
    p) postoffices=$OPTARG ;;
    s) sessions=$OPTARG ;;
    k) keep=1 ;;
    *) sed -n '5,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
postconn=$(resolve_binary "${1:-$source_dir/build/postconn}")
smtp_source=$(postfix_tool smtp-source)

server_pid=
extra_pids=
work=
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# members ADMIN_PORT: how many live members the node at ADMIN_PORT sees.
members() {
  curl -sf --max-time 5 "http://127.0.0.1:$1/cluster" |
    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["members"]))' 2>/dev/null ||
    echo 0
}

# run_cluster NODES: one measurement; prints its line.
run_cluster() {
  local nodes=$1 i j seeds="" per_source start accepted_at ports=()
  work=$(mktemp -d "${TMPDIR:-/tmp}/postconn-cluster.XXXXXX")
  read -r -a ports <<<"$(free_ports $((3 * nodes)))"
  for ((i = 0; i < nodes; i++)); do
    seeds+="${seeds:+, }\"127.0.0.1:${ports[3 * i + 2]}\""
  done
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
seeds = [$seeds]
reconnect_interval = "1s"
TOML
      for ((j = 0; j < postoffices; j++)); do
        cat <<TOML
[[postoffice]]
name = "po$j"
domains = ["po$j.example.test"]
transport = "maildir"
path = "$work/postoffices/po$j"
create_mailboxes = true
TOML
      done
    } >"$work/node$i/postconn.toml"
    (cd "$work/node$i" && exec "$postconn" serve --config postconn.toml 2>server.log) &
    extra_pids+=" $!"
  done
  for ((i = 0; i < nodes; i++)); do
    for _ in $(seq 300); do
      [ "$(members "${ports[3 * i + 1]}")" = "$nodes" ] && break
      sleep 0.1
    done
    [ "$(members "${ports[3 * i + 1]}")" = "$nodes" ] || fail "node$i does not see $nodes members"
  done

  per_source=$((messages / (nodes * postoffices)))
  local sources=()
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
  local total=$((per_source * nodes * postoffices))
  until [ "$(delivered_files "$work/postoffices")" -ge "$total" ]; do
    sleep 0.05
  done
  local took handed=0
  took=$(seconds_since "$start")
  for ((i = 0; i < nodes; i++)); do
    handed=$((handed + $(sqlite3 "$work/node$i/var/queue.db" \
      "SELECT count(*) FROM attempts WHERE outcome = 'handed_off'")))
  done
  awk -v n="$nodes" -v t="$total" -v a="$accepted_at" -v d="$took" -v h="$handed" 'BEGIN {
    printf "%d node(s): %d messages, accepted %.0f msg/s, delivered %.0f msg/s (%.2fs), %d handed over\n",
           n, t, t / a, t / d, d, h }'

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

echo "cluster_delivery: $messages messages to $postoffices maildir postoffices," \
  "$sessions sessions per node and postoffice; $(nproc) CPUs"
for nodes in 1 2 3; do
  run_cluster "$nodes"
done
