#!/usr/bin/env bash
# After the plan's last run (5 Dec 2026's seventh sitting): the XNLI CLS fine-tuning runs whose saved models stayed
# on earlier sitting machines are trained again (pinned 29d6c7f, fp32, the record's own spec, one thread), one seed
# per step, each stream in folders of its own; after each step `same_metrics.py` compares the run with the record's
# and only when they are identical puts its model beside the record's runs in /work/repro/cache/reproduction-b, so
# that the fine-tuned layer analysis of XNLI (`--parts tuned-layers`, one stream at a time) covers it.
# Usage: rerun_xnli_tuned.sh STREAM JOB:SEED [JOB:SEED ...], e.g. rerun_xnli_tuned.sh a xnli-cls-last:1 xnli-cls-last:2
source /work/scratch/stream_b_env.sh
STREAM=$1
LOG=/work/scratch/$STREAM.log
shift
cd /work/repro
for step in "$@"; do
  JOB=${step%%:*} SEED=${step#*:}
  RECORD=/work/scratch/doc-b/reproduction/finetune/$JOB/results.json
  OUT=/work/scratch/rerun/$JOB-$STREAM
  echo "=== rerun $JOB seed $SEED $(date)" >>$LOG
  $PY /work/scratch/fp32.py sweep --spec $RECORD --seeds $SEED --out $OUT >>$LOG 2>&1 || exit
  $PY /work/scratch/same_metrics.py $RECORD $OUT /work/repro/cache/reproduction-b/finetune/$JOB >>$LOG 2>&1 || exit
  flock /work/scratch/tuned.lock $PY /work/scratch/fp32.py reproduce run --data-root $DATA --parts tuned-layers \
    --tasks xnli --out cache/reproduction-b --doc $DOC >>$LOG 2>&1 || exit
done
