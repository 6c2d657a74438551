#!/usr/bin/env bash
# Prepared checks of the CUDA path, sized for a lent GPU machine, on an encoder of mBERT-base's shape with random
# weights (bench/mbert_shaped.py: the same FLOPs and memory as mBERT). Four parts, each about 1-6 minutes on an H200:
#   train  the classroom pack's POS data (cache/pack, `python -m dlfa prepare`):
#          1. `python -m dlfa train` on one GPU, twice, the same spec (precision auto: bf16; early stopping on
#             English dev and the best-dev state restored; zero-shot on the pack's languages): no errors, and
#             whether the two runs' metrics are identical (repeatability on one machine);
#          2. bench/throughput.py on the GPU: ours ÷ Hugging Face Trainer at fp32 (TF32) and bf16, DLFA's step ÷
#             last's, the training FLOP rate ÷ the GPU's own large-matmul rate, each side's peak GPU memory,
#             evaluation speed.
#   study  the intermediate-task study's path (what `python -m dlfa reproduce hub-study --device cuda` runs per
#          arm), on local copies of the task folders it reads (cache/gpu-study-data, made by --gather):
#          1. four English intermediate tasks in a mixture (three of them multiple choice: one score per choice,
#             softmax over choices), then PAWS-X with DLFA, twice, the same spec: the budget spent per task, each
#             task's English dev against its majority class, and whether the two runs are identical;
#          2. the study's Tatoeba job on the first run's trained encoder (zero-shot retrieval, every layer).
#          Random weights learn little in 300 steps: this checks that the path runs, what it costs and that it
#          repeats, not what it scores.
#   jobs   the path the app's Launch and Jobs pages take (bench/gpu_jobs.py, the classroom pack's POS data): one spec
#          run in-process, then through the job store and a worker process SIGKILLed after its first checkpoint
#          and resumed, then cancelled mid-epoch and resumed: whether both end with the in-process run's metrics
#          and dev curve exactly (checkpoints restore the CUDA random state and the step's place in the epoch).
#   profile where a training step's time goes (bench/gpu_profile.py, torch.profiler): the GPU's busy share of the
#          step, kernels and synchronizations per step, at batch 32 and 128, TF32 and bf16 (about 1 minute).
#   compile the encoder torch.compile'd (JobSpec.compile_model, `--compile`): 1. `python -m dlfa train --compile`
#          twice, the same spec (whether the two runs' metrics are identical), then the spec eager: training
#          seconds (compiling included) and how far the compiled run's metrics are from eager's; 2. the profile
#          above, each configuration eager and then compiled (the step's time, kernels a step, the warm-up that
#          compiles).
# Peak GPU memory is sampled with nvidia-smi while each `python -m dlfa` command runs.
# Usage, from the repository root (OUT: where the logs and results land; PY: the interpreter with torch):
#   python bench/mbert_shaped.py cache/mbert-shaped      # here: config and tokenizer (weights are made there)
#   bash bench/gpu_check.sh --gather ../shared/data      # here, for the study part: the files it reads (a cache)
#   OUT=/tmp/gpu-check bash bench/gpu_check.sh train study jobs profile  # on the GPU machine (carry what it reads)
# To try a part on a CPU before device time is spent, run it small on a copy of the encoder's folder (the weights
# made there must not travel): DEVICE=cpu STEPS=4 EXAMPLES=64 EVAL_EXAMPLES=40 ENCODER=/tmp/mbert ... study
# (jobs: JOB_STEPS=240 on a tiny encoder, dlfa.testing.build_tiny_encoder; it must pass the step-200 checkpoint)
set -u -o pipefail
STUDY_DATA=cache/gpu-study-data
if [ "${1:-}" = "--gather" ]; then
  for folder in english/QNLI english/CommonsenseQA english/CosmosQA pair/xcopa_xtreme_style pair/pawsx_xtreme \
                retrieval/tatoeba; do
    mkdir -p "$STUDY_DATA/$(dirname $folder)" && cp -r "$2/$folder" "$STUDY_DATA/$folder" || exit
  done
  du -sh "$STUDY_DATA"; exit
fi
PARTS=("${@:-train}")
for part in "${PARTS[@]}"; do
  case $part in train|study|jobs|profile|compile) ;;
    *) echo "unknown part '$part': train, study, jobs, profile or compile"; exit 2 ;;
  esac
done
OUT=${OUT:-/tmp/gpu-check}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
ENCODER=${ENCODER:-cache/mbert-shaped}
STEPS=${STEPS:-300}
EXAMPLES=${EXAMPLES:-4000}
EVAL_EXAMPLES=${EVAL_EXAMPLES:-2000}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD  # bench/ scripts import dlfa from here
progress_bars='it/s\]|s/it\]|step/s\]|s/step\]'

peak_memory() {  # run "$@" while sampling the GPU's memory in use; print the peak
  if [ "$DEVICE" != cuda ]; then "$@"; return; fi
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$OUT/memory.csv" & sampler=$!
  "$@"; status=$?
  kill $sampler
  echo "peak GPU memory in use: $(sort -n "$OUT/memory.csv" | tail -n 1) MiB"
  return $status
}

train_once() {  # NAME TRAIN_ARGS...: `python -m dlfa train` with the spec; its results land in $OUT/NAME.json
  local name=$1; shift
  rm -rf /tmp/gpu-$name  # a finished run there would be reported as done, not rerun
  started=$(date +%s)
  peak_memory $PY -m dlfa train "$@" --encoder $ENCODER --device "$DEVICE" --name "gpu $name" --out /tmp/gpu-$name \
    2>&1 | grep -Ev "$progress_bars" | tail -n 8
  echo "$name: $(( $(date +%s) - started )) s in all (loading, training, evaluation, saving)"
  cp /tmp/gpu-$name/results.json "$OUT/$name.json"
}

train_twice() {  # NAME TRAIN_ARGS...: `python -m dlfa train` twice with one spec, then what the first run did
  local name=$1; shift
  for run in 1 2; do
    train_once $name-$run "$@"
  done
  $PY - "$OUT/$name-1.json" "$OUT/$name-2.json" <<'EOF'
import json, sys
first, second = (json.load(open(path))["runs"][0] for path in sys.argv[1:])
print(f"device {first['device']}, precision {first['precision']}, hardware {first['hardware']}, steps {first['steps']},"
      f" train {first['train_seconds']:.1f} s, eval {first['eval_seconds']:.1f} s, dev {first['dev_score']:.2f}")
if first.get("intermediate_budget"):
    print("stages:", ", ".join(f"{stage['name']} {stage['steps']} steps" for stage in first["stages"]))
    print("intermediate budget:", first["intermediate_budget"])
    for task, dev in first["intermediate_dev"].items():
        print(f"  {task}: English dev {dev['value']:.1f} vs majority {dev['majority']:.1f} (learned: {dev['learned']})")
same = all(first.get(key) == second.get(key) for key in ("metrics", "dev_score", "intermediate_dev"))
print("two runs of one spec: " + ("identical metrics and English dev scores" if same else
      "they differ: " + ", ".join(f"{lang} {m['value']:.4f} vs {second['metrics'][lang]['value']:.4f}"
                                  for lang, m in first["metrics"].items())))
EOF
}

check_train() {
  train_twice train --task pos-classroom --aggregation dlfa --fusion-layer 6 --eval-langs de,es,it,nl,tr \
    --max-train-examples 8000 --patience 2 --eval-every 50 --max-epochs 2
  $PY bench/throughput.py --device "$DEVICE" --task pos-classroom --data-root cache/pack --encoder $ENCODER \
    --matmul-size 8192 --train-examples 3000 --repetitions 2 --eval-languages 5 --eval-sentences 1000 2>&1 \
    | grep -Ev "$progress_bars|train_runtime" | tee "$OUT/throughput.txt"
}

check_study() {
  train_twice study --task pawsx --data-root $STUDY_DATA --intermediate qnli,xcopa,commonsenseqa,cosmosqa \
    --intermediate-mode mixture --intermediate-steps "$STEPS" --aggregation dlfa --fusion-layer 6 --pooling cls \
    --eval-langs de,fr,zh --max-train-examples "$EXAMPLES" --max-eval-examples "$EVAL_EXAMPLES" \
    --patience 2 --eval-every 50 --max-epochs 2
  started=$(date +%s)
  peak_memory $PY -m dlfa train --task tatoeba --init-from /tmp/gpu-study-1/dlfa-L6-s1 --data-root $STUDY_DATA \
    --eval-langs de,fr,zh --max-eval-examples "$EVAL_EXAMPLES" --device "$DEVICE" --out /tmp/gpu-tatoeba 2>&1 \
    | grep -Ev "$progress_bars" | tail -n 6
  echo "tatoeba: $(( $(date +%s) - started )) s in all"
  cp /tmp/gpu-tatoeba/results.json "$OUT/tatoeba.json"
}

check_jobs() {
  rm -rf /tmp/gpu-jobs
  peak_memory $PY bench/gpu_jobs.py --encoder $ENCODER --device "$DEVICE" --steps "${JOB_STEPS:-400}" \
    --out /tmp/gpu-jobs 2>&1 | grep -Ev "$progress_bars" >"$OUT/jobs.txt"
  grep -E "^(reference|killed|cancelled)|Error|peak GPU" "$OUT/jobs.txt"
  for how in killed cancelled; do cp /tmp/gpu-jobs/$how/worker.log "$OUT/jobs-$how-worker.log"; done
}

check_profile() {
  $PY bench/gpu_profile.py --encoder $ENCODER --data-root cache/pack 2>&1 | grep -Ev "$progress_bars|USDT" \
    | tee "$OUT/profile.txt"
}

check_compile() {
  local spec=(--task pos-classroom --aggregation dlfa --fusion-layer 6 --eval-langs de,es,it,nl,tr
              --max-train-examples 8000 --max-steps "${COMPILE_STEPS:-400}")
  train_twice compile --compile "${spec[@]}"
  train_once eager "${spec[@]}"
  $PY - "$OUT/compile-1.json" "$OUT/eager.json" <<'EOF'
import json, sys
compiled, eager = (json.load(open(path))["runs"][0] for path in sys.argv[1:])
gaps = [abs(m["value"] - eager["metrics"][lang]["value"]) for lang, m in compiled["metrics"].items()]
print(f"{compiled['steps']} steps, {compiled['precision']}: training {compiled['train_seconds']:.1f} s compiled "
      f"(compiling included) vs {eager['train_seconds']:.1f} s eager; the largest gap between their zero-shot metrics "
      f"{max(gaps):.2f} points; English dev {compiled['dev_score']:.2f} vs {eager['dev_score']:.2f}")
EOF
  $PY bench/gpu_profile.py --encoder $ENCODER --data-root cache/pack --compile --top 0 2>&1 \
    | grep -Ev "$progress_bars|USDT" | tee "$OUT/compile-profile.txt"
}

if [ "$DEVICE" = cuda ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
fi
$PY -c "import torch, transformers; print('torch', torch.__version__, 'CUDA', torch.version.cuda,
'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
[ -f $ENCODER/model.safetensors ] || $PY bench/mbert_shaped.py $ENCODER --weights || exit
for part in "${PARTS[@]}"; do
  check_$part
done
