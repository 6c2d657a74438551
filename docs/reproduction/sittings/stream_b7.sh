#!/usr/bin/env bash
# Stream B from 5 Dec 2026's fifth sitting: XNLI as stream_b2.sh does it (what is left of its fine-tuning, then the
# layer analysis of the fine-tuned encoders on this machine), then PAWS-X with CLS pooling only
# (SITTING_POOLINGS=cls); stream A (stream_a4.sh) runs PAWS-X mean pooling on its own root.
bash /work/scratch/stream_b2.sh xnli || exit
SITTING_POOLINGS=cls bash /work/scratch/stream_b2.sh pawsx
