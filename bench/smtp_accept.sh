#!/usr/bin/env bash
# smtp_accept.sh -- accepted messages per second of `postconn serve`, driven
# by Postfix's smtp-source at 1, 10 and 50 parallel sessions.
#
#   bench/smtp_accept.sh [MESSAGES] [BYTES]     (defaults: 5000 messages of 2048 bytes)
#
# Each session count runs twice: a new connection per message, and with
# smtp-source -d, many messages per connection.
#
# Installs postfix (for smtp-source) when it is missing, builds postconn,
# starts it on a fresh queue in a temporary directory on this disk, and
# checks that the queue holds every message smtp-source was told was
# accepted. Each message is fsync'd before its 250, as always. Meanwhile
# postconn delivers them to a maildir postoffice; the last line says how
# many had arrived by the end.
set -euo pipefail
cd "$(dirname "$0")/.."

messages=${1:-5000}
bytes=${2:-2048}

if ! command -v smtp-source >/dev/null && [ ! -x /usr/sbin/smtp-source ]; then
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix
fi
PATH=$PATH:/usr/sbin
./build.sh build >/dev/null

work=$(mktemp -d "$PWD/build/bench-smtp.XXXXXX")
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/postconn.toml" <<TOML
[server]
hostname = "bench.example.test"
data_dir = "var"
log_level = "warn"
[smtp]
listen = "127.0.0.1:$port"
max_recipients = 1000
[admin]
listen = "127.0.0.1:$admin"
[[postoffice]]
name = "sales"
domains = ["sales.example.test"]
transport = "maildir"
path = "var/postoffices/sales"
TOML
mkdir -p "$work/var/postoffices/sales/bob/"{tmp,new,cur}
touch "$work/var/postoffices/sales/.postoffice"
(cd "$work" && exec "$OLDPWD/build/postconn" serve --config postconn.toml) &
server=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

queued() { sqlite3 "$work/var/queue.db" "SELECT count(*) FROM messages"; }

echo "postconn SMTP acceptance: $messages messages of $bytes bytes per run (smtp-source)"
printf '%10s %-22s %10s %10s %10s\n' sessions connections seconds "msgs/s" queued
for sessions in 1 10 50; do
  for reuse in "" -d; do
    before=$(queued)
    start=$(date +%s%N)
    smtp-source $reuse -s "$sessions" -m "$messages" -l "$bytes" -f ann@example.org \
      -t bob@sales.example.test -M bench.example.org "127.0.0.1:$port"
    end=$(date +%s%N)
    after=$(queued)
    millis=$(((end - start) / 1000000))
    printf '%10d %-22s %10s %10d %10d\n' "$sessions" \
      "$([ -n "$reuse" ] && echo "reused (-d)" || echo "one per message")" \
      "$((millis / 1000)).$(printf %03d $((millis % 1000)))" \
      "$((messages * 1000 / (millis > 0 ? millis : 1)))" "$((after - before))"
    if [ "$((after - before))" -ne "$messages" ]; then
      echo "smtp_accept: the queue got $((after - before)) of $messages messages" >&2
      exit 1
    fi
  done
done
sleep 2
echo "delivered to the maildir by the end: $(ls "$work/var/postoffices/sales/bob/new" | wc -l) of $((messages * 6))"
