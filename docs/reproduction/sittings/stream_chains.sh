#!/usr/bin/env bash
# A stream of study chains (pinned e916c85, study_chain.py): `LOG=/work/scratch/a.log bash stream_chains.sh 1:1 9:1`
# runs arm 1's seed 1 with its targets and Tatoeba job, then arm 9's seed 1 likewise. Two streams run chains of
# different arms (their jobs must differ).
set -u
export OMP_NUM_THREADS=1
PY=/work/main/.venv/bin/python
DATA=/work/shared/data
LOG=${LOG:-/work/scratch/a.log}
cd /work/study
for chain in "$@"; do
  $PY /work/scratch/study_chain.py "${chain%:*}" "${chain#*:}" -- reproduce run --data-root $DATA --parts study \
    --out cache/reproduction >>"$LOG" 2>&1 || exit
done
