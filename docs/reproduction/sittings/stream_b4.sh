#!/usr/bin/env bash
# Stream B after stream_b2.sh (from 4 Dec 2026): PAWS-X's fusion-layer selection again, at DLFA's rate under the
# English-dev rule (select/pawsx-cls-layers; pinned_rules.py), `finetune/udpos-last` again for its saved models
# (rerun_udpos_last.sh), then XNLI.
source /work/scratch/stream_b_env.sh
while pgrep -f "stream_b2.sh" >/dev/null; do sleep 60; done
cd /work/repro
SITTING_FIRST_POOLING_ONLY=1 $PY /work/scratch/fp32.py reproduce run --data-root $DATA --parts select --tasks pawsx \
  --out cache/reproduction-b --doc $DOC >>$LOG 2>&1 || exit
bash /work/scratch/rerun_udpos_last.sh
bash /work/scratch/stream_b2.sh xnli
