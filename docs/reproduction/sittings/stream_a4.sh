#!/usr/bin/env bash
# Stream A from 5 Dec 2026's fifth sitting (the study's runs are all done): PAWS-X mean pooling's fine-tuning
# (pinned plan 29d6c7f, SITTING_POOLINGS=mean) on its own root cache/reproduction-c and record /work/scratch/doc-c
# (main's record at the landing, the study left out as for doc-b), while stream B (stream_b7.sh) runs PAWS-X CLS.
source /work/scratch/stream_b_env.sh
LOG=/work/scratch/a.log
DOC=/work/scratch/doc-c/REPRODUCTION.md
export SITTING_POOLINGS=mean
cd /work/repro
$PY /work/scratch/reuse_seed1.py cache/reproduction-c $DATA $DOC -- pawsx-mean >>$LOG 2>&1 || exit
$PY /work/scratch/fp32.py reproduce run --data-root $DATA --parts finetune --tasks pawsx --out cache/reproduction-c \
  --doc $DOC >>$LOG 2>&1
