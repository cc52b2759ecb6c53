#!/usr/bin/env bash
# What the operations console costs: CPU time of its thread (snapshot, render, blit) while
# `redfire-gateway demo` runs with the dashboard in a 160x48 tmux pane, as a share of one core.
#
#   swift build -c release && scripts/console-cpu.sh [SECONDS] [REFRESH_RATE]
#
# Needs tmux. Prints the console thread's share and the whole process's for context.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-30}
refresh=${2:-4}
bin=${BIN:-.build/release/redfire-gateway}
rate=${RATE:-200}
[ -x "$bin" ] || { echo "build first: swift build -c release (or set BIN)" >&2; exit 2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
socket=redfire-console-cpu-$$
trap 'tmux -L "$socket" kill-server 2>/dev/null || true' EXIT
tmux -L "$socket" new-session -d -x 160 -y 48 \
    "env LANG=C.UTF-8 TERM=xterm-256color $bin demo --listen 127.0.0.1:$port --rate $rate --refresh-rate $refresh"

# Wait (bounded) for the dashboard to show and find the console thread.
for _ in $(seq 1 100); do
    tmux -L "$socket" capture-pane -p | grep -q "Services 5" && break
    sleep 0.1
done
pid=$(pgrep -f "^$bin demo --listen 127.0.0.1:$port" | head -1)
tid=""
for task in /proc/"$pid"/task/*; do
    if [ "$(cat "$task/comm")" = "redfire-console" ]; then tid=$(basename "$task"); fi
done
[ -n "$tid" ] || { echo "console thread not found" >&2; exit 1; }

ticks() { awk '{print $14 + $15}' "$1"; }
hz=$(getconf CLK_TCK)
sleep 3  # warm-up: every series has data, the screen is full
thread0=$(ticks /proc/"$pid"/task/"$tid"/stat); process0=$(ticks /proc/"$pid"/stat)
sleep "$duration"
thread1=$(ticks /proc/"$pid"/task/"$tid"/stat); process1=$(ticks /proc/"$pid"/stat)

awk -v t=$((thread1 - thread0)) -v p=$((process1 - process0)) -v hz="$hz" -v d="$duration" -v r="$refresh" -v rate="$rate" 'BEGIN {
    printf "console at %s Hz, 160x48, demo traffic %s req/s, %s s:\n", r, rate, d
    printf "  console thread: %.2f%% of one core (%.2f ms CPU per refresh)\n", 100 * t / hz / d, 1000 * t / hz / (d * r)
    printf "  whole process:  %.2f%% of one core (gateway + 10 demo instances + traffic generator)\n", 100 * p / hz / d
}'
tmux -L "$socket" send-keys q Tab Enter
