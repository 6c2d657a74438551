#!/usr/bin/env bash
# Stream B from 4 Dec 2026's third sitting (the same machine as the second, so the rerun `finetune/udpos-last`
# models are still here): the fine-tuned layer analysis of UD-POS that the second sitting's end interrupted, then
# XNLI fine-tuning (resumes last-s1 from its checkpoint).
source /work/scratch/stream_b_env.sh
cd /work/repro
$PY /work/scratch/fp32.py reproduce run --data-root $DATA --parts tuned-layers --tasks udpos \
  --out cache/reproduction-b --doc $DOC >>$LOG 2>&1 || exit
bash /work/scratch/stream_b2.sh xnli
