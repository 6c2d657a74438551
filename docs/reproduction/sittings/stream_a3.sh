#!/usr/bin/env bash
# Stream A from 4 Dec 2026 (second machine of the day): the study's jobs that need no arm encoder (a fresh machine
# has none): arm 0's targets and Tatoeba job (pinned e916c85), then PAWS-X fine-tuning as stream_a2.sh.
set -u
export OMP_NUM_THREADS=1
PY=/work/main/.venv/bin/python
DATA=/work/shared/data
LOG=/work/scratch/a.log
cd /work/study
$PY /work/scratch/study_only.py study/udpos-arm-0 study/xnli-arm-0 study/tatoeba-arm-0-s1 -- \
  reproduce run --data-root $DATA --parts study --out cache/reproduction >>$LOG 2>&1 || exit
cd /work/repro
$PY /work/scratch/reuse_seed1.py cache/reproduction $DATA docs/REPRODUCTION.md -- pawsx-cls pawsx-mean >>$LOG 2>&1 || exit
$PY /work/scratch/fp32.py reproduce run --data-root $DATA --parts finetune --tasks pawsx --out cache/reproduction >>$LOG 2>&1
