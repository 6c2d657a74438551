#!/usr/bin/env bash
# Stream B from 4 Dec 2026 (second machine of the day), after stream_b4.sh's PAWS-X selection: `finetune/udpos-last`
# again for its saved models (rerun_udpos_last.sh, now through `sweep`: `train` takes one run), then XNLI.
source /work/scratch/stream_b_env.sh
bash /work/scratch/rerun_udpos_last.sh
bash /work/scratch/stream_b2.sh xnli
