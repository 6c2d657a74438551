#!/usr/bin/env bash
# Stream A, from this sitting on: wait for the study (pinned e916c85) started by stream_a.sh, stop if it did not
# complete; then PAWS-X fine-tuning (both poolings, mean at the CLS choices) with the pinned plan (29d6c7f), seed 1
# taken over where a selection run of the same settings exists.
set -u
export OMP_NUM_THREADS=1
PY=/work/main/.venv/bin/python
DATA=/work/shared/data
LOG=/work/scratch/a.log
while pgrep -f "parts study" >/dev/null; do sleep 60; done
cd /work/study && $PY -m dlfa reproduce run --data-root $DATA --parts study --out cache/reproduction >>$LOG 2>&1 || exit
cd /work/repro
$PY /work/scratch/reuse_seed1.py cache/reproduction $DATA docs/REPRODUCTION.md -- pawsx-cls pawsx-mean >>$LOG 2>&1 || exit
$PY /work/scratch/fp32.py reproduce run --data-root $DATA --parts finetune --tasks pawsx --out cache/reproduction >>$LOG 2>&1
