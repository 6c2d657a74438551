# Sourced by stream B's steps (stream_b2.sh, stream_b4.sh, rerun_udpos_last.sh): one thread per stream, the
# interpreter that runs the pinned code, the data, and stream B's log and record.
set -u
export OMP_NUM_THREADS=1
PY=/work/main/.venv/bin/python
DATA=/work/shared/data
LOG=/work/scratch/b.log
DOC=/work/scratch/doc-b/REPRODUCTION.md
