#!/bin/bash
# Starts gunicorn, polls each fragment with wrk, prints wrk's RESULT line with the workers' own
# CPU per request (from /proc) and the load average, then stops gunicorn. Bounded: each wrk run
# lasts DURATION seconds. Run from the project root with the gunicorn environment of the README
# (DATABASE_URL of a seed_desk_load database, DEBUG=0, SECRET_KEY, ALLOWED_HOSTS, …):
#   tests/load/desk_bench.sh 3 sync 20 3000 dashboard
#   tests/load/desk_bench.sh 2 gthread:4 20 2000 run positions
#   tests/load/desk_bench.sh 3 sync 15 0 dashboard run positions   # 1 poller, back to back
# POLL_MS 0 means one connection back to back; otherwise 50 connections (CONNS to change).
set -u
W=$1; KIND=$2; D=$3; POLL=$4; shift 4
TRADERS=${TRADERS:-desk-load.lua}; PORT=${PORT:-8814}
ARGS="-k sync"
# gthread keeps connections alive: past a poll interval, or wrk counts each close as an error.
case $KIND in gthread:*) ARGS="-k gthread --keep-alive 10 --threads ${KIND#gthread:}";; esac
.venv/bin/gunicorn trader.wsgi -w "$W" $ARGS -b "127.0.0.1:$PORT" >/dev/null 2>&1 &
GUNICORN=$!
trap 'kill $GUNICORN 2>/dev/null; wait $GUNICORN 2>/dev/null' EXIT
sleep 6
cpu() { local total=0 p; for p in $WORKERS; do
  read -r -a f < "/proc/$p/stat"; total=$((total + f[13] + f[14])); done; echo $total; }
for fragment in "$@"; do
  # Warm every worker (imports, templates) before measuring.
  FRAGMENT=$fragment POLL_MS=0 TRADERS=$TRADERS timeout 30 wrk -t1 -c6 -d8s \
    -s tests/load/desk_polling.lua "http://127.0.0.1:$PORT" >/dev/null
  WORKERS=$(pgrep -P $GUNICORN | tr '\n' ' ')
  conns=${CONNS:-50}; threads=2
  [ "$POLL" = 0 ] && conns=1 && threads=1
  before=$(cpu)
  result=$(FRAGMENT=$fragment POLL_MS=$POLL TRADERS=$TRADERS timeout $((D + 30)) \
    wrk -t$threads -c$conns -d"${D}s" --timeout 10s -s tests/load/desk_polling.lua \
    "http://127.0.0.1:$PORT" | grep RESULT)
  after=$(cpu)
  requests=$(echo "$result" | sed 's/.* requests=\([0-9]*\).*/\1/')
  per=$(python3 -c "print(round(($after - $before) * 1000 / $(getconf CLK_TCK) / max(${requests:-0}, 1), 1))")
  echo "$result workers=$W/$KIND conns=$conns cpu_ms_per_request=$per load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" at=$(date -u +%H:%M:%S)"
done
