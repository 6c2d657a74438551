#!/usr/bin/env bash
# After the plan's last run (5 Dec 2026's seventh sitting): the XNLI CLS fine-tuning runs whose saved models stayed
# on earlier sitting machines are trained again (pinned 29d6c7f, fp32, the record's own spec, one thread), a few
# seeds per stream in a folder of their own; `same_metrics.py` compares them with the record run by run and only
# when every one is identical puts their models beside the record's runs in /work/repro/cache/reproduction-b, so
# that the fine-tuned layer analysis of XNLI (`--parts tuned-layers`, one stream at a time) covers them.
# Usage: rerun_xnli_tuned.sh LOG JOB:SEEDS [JOB:SEEDS ...], e.g. rerun_xnli_tuned.sh a xnli-cls-last:1,2,3
source /work/scratch/stream_b_env.sh
LOG=/work/scratch/$1.log
shift
cd /work/repro
for step in "$@"; do
  JOB=${step%%:*} SEEDS=${step#*:}
  RECORD=/work/scratch/doc-b/reproduction/finetune/$JOB/results.json
  OUT=/work/scratch/rerun/$JOB-$SEEDS
  echo "=== rerun $JOB seeds $SEEDS $(date)" >>$LOG
  $PY /work/scratch/fp32.py sweep --spec $RECORD --seeds $SEEDS --out $OUT >>$LOG 2>&1 || exit
  $PY /work/scratch/same_metrics.py $RECORD $OUT /work/repro/cache/reproduction-b/finetune/$JOB >>$LOG 2>&1 || exit
  flock /work/scratch/tuned.lock $PY /work/scratch/fp32.py reproduce run --data-root $DATA --parts tuned-layers \
    --tasks xnli --out cache/reproduction-b --doc $DOC >>$LOG 2>&1 || exit
done
