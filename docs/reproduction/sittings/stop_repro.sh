#!/usr/bin/env bash
# Stop both streams cleanly: the drivers first (so no next step starts), then SIGINT to each run (it checkpoints).
pkill -f "bash /work/scratch/stream_"
pkill -f "bash /work/scratch/rerun_"
pkill -INT -f "reproduce run --data-root|fp32.py train|fp32.py sweep"
for i in $(seq 1 120); do pgrep -f "reproduce run --data-root|fp32.py train|fp32.py sweep" >/dev/null || { echo stopped; exit 0; }; sleep 5; done
echo "still running after 10 min:"; pgrep -af "reproduce run --data-root|fp32.py train|fp32.py sweep"
