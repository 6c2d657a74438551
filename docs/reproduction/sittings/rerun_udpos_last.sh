#!/usr/bin/env bash
# Stream B's next step: `finetune/udpos-last` again (pinned 29d6c7f, fp32, same spec) in a root of its own, for the
# saved models the record lost with an earlier machine. Its metrics are compared with the record's run by run
# (determinism across sittings); only when every run is identical are the models put beside the record's runs in
# /work/repro/cache/reproduction-b, and the fine-tuned layer analysis of UD-POS resumes.
source /work/scratch/stream_b_env.sh
OUT=/work/scratch/udpos-last-rerun
RECORD=/work/scratch/doc-b/reproduction/finetune/udpos-last/results.json
cd /work/repro
$PY /work/scratch/fp32.py sweep --spec $RECORD --out $OUT >>$LOG 2>&1 || exit
$PY /work/scratch/same_metrics.py $RECORD $OUT /work/repro/cache/reproduction-b/finetune/udpos-last >>$LOG 2>&1 || exit
$PY /work/scratch/fp32.py reproduce run --data-root $DATA --parts tuned-layers --tasks udpos \
  --out cache/reproduction-b --doc $DOC >>$LOG 2>&1
