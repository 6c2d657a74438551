#!/usr/bin/env bash
# One prepared check of the intermediate-task study's CUDA path (what `python -m dlfa reproduce hub-study --device
# cuda` runs per arm), sized for a lent GPU machine (a few minutes on an H200), on the mBERT-shaped encoder with
# random weights (bench/mbert_shaped.py) and a local data root holding only what it reads:
#   1. `python -m dlfa train` with four English intermediate tasks in a mixture (two of them multiple choice: one
#      score per choice, softmax over choices), then the PAWS-X target with DLFA, twice, the same spec: no errors,
#      the budget spent per task, each task's English dev against its majority class, and whether the two runs'
#      metrics are identical (deterministic kernels on the GPU);
#   2. the study's Tatoeba job (`python -m dlfa train --task tatoeba --init-from RUN`) on the first run's trained
#      encoder: zero-shot retrieval on the GPU, every layer.
# Peak GPU memory is sampled with nvidia-smi while each step runs. Random weights learn little in 300 steps: this
# checks that the path runs, what it costs and that it repeats, not what it scores.
# Usage, from the repository root:
#   python bench/mbert_shaped.py cache/mbert-shaped      # here: config and tokenizer (weights are made there)
#   bash bench/gpu_study_check.sh --gather ../shared/data cache/gpu-study-data   # here: the files it reads
#   OUT=/tmp/gpu-study bash bench/gpu_study_check.sh     # on the GPU machine (carry both folders)
# To try the script on a CPU before device time is spent, run the same steps small (a copy of the encoder's folder,
# since the weights made there must not travel): DEVICE=cpu STEPS=4 EXAMPLES=64 EVAL_EXAMPLES=40 ENCODER=/tmp/mbert
set -u -o pipefail
DATA=cache/gpu-study-data
if [ "${1:-}" = "--gather" ]; then  # copy the task folders the check reads (a cache, never committed)
  for folder in english/QNLI english/CommonsenseQA english/CosmosQA pair/xcopa_xtreme_style pair/pawsx_xtreme \
                retrieval/tatoeba; do
    mkdir -p "$3/$(dirname $folder)" && cp -r "$2/$folder" "$3/$folder" || exit
  done
  du -sh "$3"; exit
fi
OUT=${OUT:-/tmp/gpu-study}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-300}
EXAMPLES=${EXAMPLES:-4000}
EVAL_EXAMPLES=${EVAL_EXAMPLES:-2000}
ENCODER=${ENCODER:-cache/mbert-shaped}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
progress_bars='it/s\]|s/it\]|step/s\]|s/step\]'

if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
fi
$PY -c "import torch, transformers; print('torch', torch.__version__, 'CUDA', torch.version.cuda,
'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
[ -f $ENCODER/model.safetensors ] || $PY bench/mbert_shaped.py $ENCODER --weights || exit

peak_memory() {  # run "$@" while sampling the GPU's memory in use; print the peak
  if [ "$DEVICE" != cuda ]; then "$@"; return; fi
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$OUT/memory.csv" & sampler=$!
  "$@"; status=$?
  kill $sampler
  echo "peak GPU memory in use: $(sort -n "$OUT/memory.csv" | tail -n 1) MiB"
  return $status
}

for run in 1 2; do
  started=$(date +%s)
  peak_memory $PY -m dlfa train --task pawsx --encoder $ENCODER --data-root $DATA \
    --intermediate qnli,xcopa,commonsenseqa,cosmosqa --intermediate-mode mixture --intermediate-steps "$STEPS" \
    --aggregation dlfa --fusion-layer 6 --pooling cls --eval-langs de,fr,zh \
    --max-train-examples "$EXAMPLES" --max-eval-examples "$EVAL_EXAMPLES" \
    --patience 2 --eval-every 50 --max-epochs 2 --device "$DEVICE" --name "gpu study check $run" \
    --out /tmp/gpu-study-$run 2>&1 | grep -Ev "$progress_bars" | tail -n 8
  echo "study run $run: $(( $(date +%s) - started )) s in all (loading, both stages, evaluation, saving)"
  cp /tmp/gpu-study-$run/results.json "$OUT/study-$run.json"
done
$PY - "$OUT/study-1.json" "$OUT/study-2.json" <<'EOF'
import json, sys
first, second = (json.load(open(path))["runs"][0] for path in sys.argv[1:])
print(f"device {first['device']}, precision {first['precision']}, hardware {first['hardware']},"
      f" train {first['train_seconds']:.1f} s, eval {first['eval_seconds']:.1f} s")
for stage in first["stages"]:
    print(f"stage {stage['name']}: {stage['steps']} steps")
print("intermediate budget:", first["intermediate_budget"])
for task, dev in first["intermediate_dev"].items():
    print(f"  {task}: English dev {dev['value']:.1f} vs majority {dev['majority']:.1f} (learned: {dev['learned']})")
print(f"target English dev {first['dev_score']:.2f}; zero-shot " +
      ", ".join(f"{lang} {m['value']:.2f}" for lang, m in first["metrics"].items()))
same = first["metrics"] == second["metrics"] and first["intermediate_dev"] == second["intermediate_dev"]
print("two runs of one spec: " + ("identical metrics and intermediate dev scores" if same else
      "they differ: " + ", ".join(f"{lang} {m['value']:.4f} vs {second['metrics'][lang]['value']:.4f}"
                                  for lang, m in first["metrics"].items())))
EOF

started=$(date +%s)
peak_memory $PY -m dlfa train --task tatoeba --init-from /tmp/gpu-study-1/dlfa-L6-s1 --data-root $DATA \
  --eval-langs de,fr,zh --max-eval-examples "$EVAL_EXAMPLES" --device "$DEVICE" --out /tmp/gpu-tatoeba 2>&1 \
  | grep -Ev "$progress_bars" | tail -n 6
echo "tatoeba: $(( $(date +%s) - started )) s in all"
cp /tmp/gpu-tatoeba/results.json "$OUT/tatoeba.json"
