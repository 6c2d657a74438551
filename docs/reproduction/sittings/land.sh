#!/usr/bin/env bash
# End of a sitting: stop both streams, merge their records into main's docs/reproduction, regenerate the report,
# and keep this sitting's scripts beside the record (docs/reproduction/sittings). Then run the record's tests and
# commit on main by hand.
set -eu
bash /work/scratch/stop_repro.sh
cd /work/main
.venv/bin/python /work/scratch/merge_record.py docs/reproduction /work/study/docs/reproduction \
  /work/repro/docs/reproduction \
  $(test -d /work/scratch/doc-c && echo /work/scratch/doc-c/reproduction) /work/scratch/doc-b/reproduction
mkdir -p docs/reproduction/sittings
cd /work/scratch && cp SITTINGS.md fp32.py pinned_rules.py merge_record.py stream_a2.sh stream_a3.sh stream_a4.sh study_only.py study_chain.py test_study_chain.py \
  stream_chains.sh stream_b2.sh stream_b5.sh stream_b6.sh stream_b7.sh \
  stream_b4.sh stream_b_env.sh reuse_seed1.py rerun_udpos_last.sh rerun_xnli_tuned.sh same_metrics.py stop_repro.sh land.sh \
  /work/main/docs/reproduction/sittings/ && cd /work/main
.venv/bin/python -m dlfa reproduce report --out /nonexistent
git status --short docs | head -30
