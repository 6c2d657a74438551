#!/usr/bin/env bash
# Stream B, from this sitting on: wait for the run stream_b.sh started, then per task (pinned plan 29d6c7f, own
# root /work/repro/cache/reproduction-b and record /work/scratch/doc-b): seed 1 taken over where it can be,
# fine-tuning (resumes, or finds it done), and for UD-POS and XNLI the layer analysis of the fine-tuned encoders
# while their saved models are on this machine.
source /work/scratch/stream_b_env.sh
while pgrep -f "reproduction-b --doc" >/dev/null; do sleep 60; done
cd /work/repro
for task in "$@"; do
  case $task in udpos) settings=udpos ;; panx) settings=panx ;; xnli) settings="xnli-cls xnli-mean" ;;
                pawsx) settings="pawsx-cls pawsx-mean" ;; esac
  $PY /work/scratch/reuse_seed1.py cache/reproduction-b $DATA $DOC -- $settings >>$LOG 2>&1 || exit
  $PY /work/scratch/fp32.py reproduce run --data-root $DATA --parts finetune --tasks $task --out cache/reproduction-b --doc $DOC >>$LOG 2>&1 || exit
  case $task in udpos|xnli)
    $PY /work/scratch/fp32.py reproduce run --data-root $DATA --parts tuned-layers --tasks $task --out cache/reproduction-b --doc $DOC >>$LOG 2>&1 || exit ;;
  esac
done
