#!/usr/bin/env bash
# One prepared check of the CUDA path, sized for a lent GPU machine (about 6 minutes on an H200), on an encoder
# of mBERT-base's shape with random weights (bench/mbert_shaped.py: the same FLOPs and memory as mBERT) and the
# classroom pack's POS data (cache/pack, `python -m dlfa prepare`):
#   1. `python -m dlfa train` on one GPU, twice, the same spec (precision auto: bf16; early stopping on English
#      dev and the best-dev state restored; zero-shot on the pack's languages): no errors, and whether the two
#      runs' metrics are identical (bf16 repeatability on one machine);
#   2. bench/throughput.py on the GPU: ours ÷ Hugging Face Trainer at fp32 (TF32) and bf16, DLFA's step ÷ last's,
#      the training FLOP rate ÷ the GPU's own large-matmul rate, each side's peak GPU memory, evaluation speed.
# Usage, from the repository root (OUT: where the logs and results land; PY: the interpreter with torch):
#   python bench/mbert_shaped.py cache/mbert-shaped      # here: config and tokenizer (weights are made there)
#   OUT=/tmp/gpu-check bash bench/gpu_check.sh           # on the GPU machine
set -u -o pipefail
OUT=${OUT:-/tmp/gpu-check}
PY=${PY:-python3}
ENCODER=cache/mbert-shaped
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD  # bench/ scripts import dlfa from here
progress_bars='it/s\]|s/it\]|step/s\]|s/step\]'

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import torch, transformers; print('torch', torch.__version__, 'CUDA', torch.version.cuda,
'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
$PY bench/mbert_shaped.py $ENCODER --weights || exit

for run in 1 2; do
  started=$(date +%s)
  $PY -m dlfa train --task pos-classroom --encoder $ENCODER --aggregation dlfa --fusion-layer 6 \
    --eval-langs de,es,it,nl,tr --max-train-examples 8000 --patience 2 --eval-every 50 --max-epochs 2 \
    --device cuda --name "gpu check $run" --out /tmp/gpu-train-$run 2>&1 | grep -Ev "$progress_bars" | tail -n 8
  echo "train run $run: $(( $(date +%s) - started )) s in all (loading, training, evaluation, saving)"
  cp /tmp/gpu-train-$run/results.json "$OUT/train-$run.json"
done
$PY - "$OUT/train-1.json" "$OUT/train-2.json" <<'EOF'
import json, sys
first, second = (json.load(open(path))["runs"][0] for path in sys.argv[1:])
print(f"device {first['device']}, precision {first['precision']}, hardware {first['hardware']}, steps {first['steps']},"
      f" train {first['train_seconds']:.1f} s, eval {first['eval_seconds']:.1f} s, dev {first['dev_score']:.2f}")
same = first["metrics"] == second["metrics"] and first["dev_score"] == second["dev_score"]
print("two runs of one spec on this GPU: " + ("identical metrics and English dev score" if same else
      "metrics differ: " + ", ".join(f"{lang} {m['value']:.4f} vs {second['metrics'][lang]['value']:.4f}"
                                     for lang, m in first["metrics"].items())))
EOF

$PY bench/throughput.py --device cuda --task pos-classroom --data-root cache/pack --encoder $ENCODER \
  --matmul-size 8192 --train-examples 3000 --repetitions 2 --eval-languages 5 --eval-sentences 1000 2>&1 \
  | grep -Ev "$progress_bars|train_runtime" | tee "$OUT/throughput.txt"
