"""Training throughput of our trainer ÷ a plain Hugging Face `Trainer`, the FLOP rate it reaches against the
machine's own large-matmul rate, and zero-shot evaluation speed, all measured in one run.

Sides (same model class, encoder, sentences, batch size, frozen word embeddings, precision):
    ours                        run_job, one epoch (length-grouped batches, token slices on the CPU)
    Trainer defaults            fp32, random batches, dynamic padding
    Trainer group_by_length     train_sampling_strategy="group_by_length", at each precision
for aggregation `last` and `dlfa` (layer 6), at fp32 and at bf16 (bf16 only where the CPU computes it
natively, dlfa.engine.runtime.cpu_has_bf16: elsewhere it is emulated and slower than fp32 on every side). Every side
trains one epoch over the same sentences, so each processes the same real (non-padding) tokens; a rate is
real tokens ÷ training-loop seconds (ours: train_seconds; Trainer: train_runtime). The sides run interleaved
(ours, Trainer, Trainer, ours, …) over --repetitions, so machine noise hits all of them alike; each ratio is
taken within one repetition and printed as its median and its spread (min–max) over the repetitions.

Targets (RATIO lines): ours / Trainer group_by_length >= 1.3 (bf16) and >= 1.5 (fp32); ours / Trainer
defaults (fp32) >= 2.5; DLFA step / last step <= 1.05 (ours, same batches); training FLOP rate / large
matmul rate at the same precision >= 0.35.

Training FLOPs per real token (analytic; a multiply-add is 2 FLOPs; backward = 2 × forward):
    encoder  3 · N · (2 · (4 E² + 2 E F) + 4 T̄ E)        N layers, width E, feed-forward F,
                                                          T̄ = Σ L² / Σ L the attended length per token
    fusion   3 · (4 E² / r) · (1 + 1 / L̄)                 dlfa only: local bottleneck per token, global per
                                                          sentence (L̄ = mean length), reduction r
    head     3 · 2 E C                                    C labels
The frozen word embeddings are a lookup (no FLOPs); norms, softmax, GELU and dropout are elementwise and
left out, as is padding (computed, but not useful work). The machine's rate is torch.mm of two
--matmul-size square matrices at the same precision on the same threads, measured between the repetitions.

Where the rest goes (torch.profiler, `last`, fp32, 6 steps of 32 UD-POS sentences unsliced, this 2-core CPU):
the linear layers' matmuls (mm, addmm) take 67% of the CPU time at about 70% of the large-matmul rate; dropout's
mask generation (bernoulli_, on one thread) 10%, which our side now draws more cheaply (dlfa.engine.cpu_dropout;
the Trainer sides keep torch's stock dropout); attention's batched matmuls over short rows 5%; copies 3%; GELU
and its backward 2.5%; AdamW's step 2.7%; layer norms, softmax and the rest are small. Padding is computed but not
counted. Every slice but the first of a sliced DLFA batch runs through the encoder a second time
(backward_whole_batch), so DLFA's FLOP rate is lower than `last`'s by about that pass.

Evaluation: zero-shot UD-POS evaluation of --eval-languages (8) × --eval-sentences (500) test sentences by
evaluate_dataset (batches sorted by length, inference mode, each sentence tokenized once, before timing).

    python bench/throughput.py                                     # 2,000 sentences per side, 3 repetitions
    python bench/throughput.py --train-examples 200 --repetitions 3 --eval-sentences 100   # quick check
    python bench/throughput.py --device cuda --encoder cache/mbert-shaped --matmul-size 8192  # a GPU (+ its memory)

On a GPU (--device cuda) fp32 means TF32 matmuls, on every side and in the machine's rate, and the word
embeddings train, on every side (as ours does there); each side's peak GPU memory is printed beside its rate.
Our first run turns torch's deterministic kernels on for the process (dlfa.engine.runtime), so every side that
follows, the Trainer's too, computes with them.
bench/mbert_shaped.py makes an encoder of mBERT-base's shape where the real one cannot be downloaded.
"""
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import parser, train_split
from torch import nn

from dlfa.model.encoders import encoder_info, load_encoder
from dlfa.engine.spec import JobSpec
from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig
from dlfa.data.registry import DataSource, available_languages, get_task, load_encoded
from dlfa.engine.datasets import EncodedDataset
from dlfa.engine.job import run_job
from dlfa.engine.runtime import cpu_has_bf16

FUSION_LAYER = 6
EVAL_LANGUAGES = ("de", "fr", "es", "ru", "zh", "ar", "fi", "it")  # UD PUD treebanks: 1,000 test sentences each


class ForTrainer(nn.Module):
    """DlfaModel with the signature and output the Trainer expects."""

    def __init__(self, model: DlfaModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels=None):
        out = self.model(input_ids, attention_mask, labels=labels)
        return {"loss": out.loss, "logits": out.logits}


def benchmark_model(args, aggregation: str) -> DlfaModel:
    """A freshly loaded encoder with a --task head and `aggregation`; word embeddings frozen on the CPU and trained
    on a GPU, as ours does (dlfa.engine.job.freezes_word_embeddings)."""
    task = get_task(args.task)
    torch.manual_seed(0)
    config = DlfaConfig(args.encoder, {task.name: HeadConfig("token", list(task.labels))}, aggregation,
                        FUSION_LAYER if aggregation == "dlfa" else None,
                        freeze_word_embeddings=args.device == "cpu")
    return DlfaModel(config, load_encoder(args.encoder).model)


def trainer_seconds(args, rows: list[dict], aggregation: str, strategy: str, bf16: bool) -> float:
    """Seconds of one Trainer epoch over `rows` ({"input_ids", "labels"} lists); TF32 on a GPU, as ours."""
    from transformers import DataCollatorForTokenClassification, Trainer, TrainingArguments

    training = TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size, num_train_epochs=1,
        learning_rate=5e-5, weight_decay=0.01, warmup_steps=0.1, max_grad_norm=1.0, seed=1,
        report_to="none", save_strategy="no", logging_strategy="no", disable_tqdm=True,
        train_sampling_strategy=strategy, bf16=bf16, use_cpu=args.device == "cpu", tf32=args.device == "cuda")
    trainer = Trainer(model=ForTrainer(benchmark_model(args, aggregation)), args=training, train_dataset=rows,
                      data_collator=DataCollatorForTokenClassification(load_encoder(args.encoder).tokenizer))
    return trainer.train().metrics["train_runtime"]


def ours_seconds(args, aggregation: str, precision: str, train_examples: int | None = None) -> float:
    """Seconds of our training loop over one epoch of the first train_examples sentences."""
    spec = JobSpec(task=args.task, eval_languages=eval_languages(args)[:1], encoder=args.encoder,
                   data_root=args.data_root, device=args.device,
                   aggregations=(aggregation,), fusion_layers=(FUSION_LAYER,) if aggregation == "dlfa" else (),
                   max_train_examples=train_examples or args.train_examples, max_eval_examples=8, epochs=1,
                   batch_size=args.batch_size, bootstrap_samples=10, precision=precision)
    with tempfile.TemporaryDirectory() as out:
        return run_job(spec, Path(out), resume=False)["runs"][0]["train_seconds"]


def matmul_flops_per_second(size: int, dtype: torch.dtype, device: str, repeats: int = 5) -> float:
    """Best rate of torch.mm on two size × size matrices of `dtype` on `device` (on the CPU: this process's
    threads; fp32 on a GPU: TF32, as training uses)."""
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def training_flops_per_token(encoder: str, aggregation: str, lengths, num_labels: int, reduction: int = 4) -> float:
    """Analytic training FLOPs per real token (forward + backward) of encoder, fusion and head (module docstring)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(encoder_info(encoder).path)
    width, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    lengths = lengths.astype("float64")
    attended = (lengths**2).sum() / lengths.sum()
    encoder_flops = layers * (2 * (4 * width**2 + 2 * width * inner) + 4 * attended * width)
    fusion = 4 * width**2 / reduction * (1 + 1 / lengths.mean()) if aggregation == "dlfa" else 0.0
    return 3 * (encoder_flops + fusion + 2 * width * num_labels)


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def eval_languages(args) -> list[str]:
    """The first --eval-languages of EVAL_LANGUAGES for UD-POS; of --task's languages with a test split otherwise."""
    if args.task == "udpos":
        return list(EVAL_LANGUAGES[:args.eval_languages])
    splits = available_languages(args.task, DataSource.resolve(args.data_root))
    return [language for language in splits if language != "en" and "test" in splits[language]][:args.eval_languages]


def evaluation_tokens_per_second(args, precision: str) -> tuple[int, float]:
    """(real tokens, tokens/s) of zero-shot evaluation of a DLFA model on the evaluation languages."""
    from dlfa.engine.evaluate import evaluate_dataset

    device = torch.device(args.device)
    model = benchmark_model(args, "dlfa").to(device)
    tokenizer = load_encoder(args.encoder).tokenizer
    task = get_task(args.task)
    source = DataSource.resolve(args.data_root)
    datasets = [EncodedDataset(load_encoded(task, language, "test", source, tokenizer, 128,
                                            max_examples=args.eval_sentences), tokenizer.pad_token_id)
                for language in eval_languages(args)]
    amp_dtype = torch.bfloat16 if precision == "bf16" else None
    synchronize(args.device)
    started = time.perf_counter()
    for dataset in datasets:
        evaluate_dataset(model, dataset, task, device, amp_dtype)
    synchronize(args.device)
    tokens = int(sum(d.lengths.sum() for d in datasets))
    return tokens, tokens / (time.perf_counter() - started)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}  (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    p = parser(__doc__)
    p.set_defaults(train_examples=2000)
    p.add_argument("--repetitions", type=int, default=3)
    p.add_argument("--eval-languages", type=int, default=8, help=f"the first n of {', '.join(EVAL_LANGUAGES)}")
    p.add_argument("--eval-sentences", type=int, default=500, help="test sentences per evaluation language")
    p.add_argument("--matmul-size", type=int, default=2048, help="8192 on a GPU")
    p.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"),
                   help="default: fp32, and bf16 on a GPU or where the CPU computes it natively")
    p.add_argument("--task", default="udpos", help="a token task (pos-classroom: the classroom pack's)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    args = p.parse_args()
    if args.device == "cuda":  # fp32 means TF32 matmuls on a GPU, in training (dlfa.engine.runtime) as here
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    data = train_split(args, load_encoder(args.encoder).tokenizer, args.task)
    tokens = int(data.lengths.sum())
    rows = [{"input_ids": data.input_ids[data.offsets[i]:data.offsets[i + 1]].tolist(),
             "labels": data.labels[data.offsets[i]:data.offsets[i + 1]].tolist()} for i in range(len(data))]
    native_bf16 = args.device == "cuda" or cpu_has_bf16()
    precisions = tuple(args.precisions or (("fp32", "bf16") if native_bf16 else ("fp32",)))
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    sides = [(aggregation, precision, side) for precision in precisions for aggregation in ("last", "dlfa")
             for side in ("ours", "Trainer defaults", "Trainer group_by_length")
             if not (side == "Trainer defaults" and precision == "bf16")]
    where = (torch.cuda.get_device_name() if args.device == "cuda" else f"{torch.get_num_threads()} CPU threads")
    print(f"{args.task}: {len(data)} sentences, {tokens} real tokens, batch {args.batch_size}, {args.repetitions} "
          f"repetitions, {where}, precisions {', '.join(precisions)}"
          + ("" if native_bf16 else " (this CPU has no native bf16)"), flush=True)

    ours_seconds(args, "dlfa", "fp32", train_examples=2 * args.batch_size)  # warm-up: first kernels, allocator
    trainer_seconds(args, rows[:2 * args.batch_size], "dlfa", "group_by_length", bf16=False)
    if "bf16" in precisions:
        ours_seconds(args, "dlfa", "bf16", train_examples=2 * args.batch_size)
    rates: dict[tuple, list[float]] = {key: [] for key in sides}
    machine: dict[str, list[float]] = {precision: [] for precision in precisions}
    peak_memory: dict[tuple, float] = {}
    for repetition in range(args.repetitions):
        for precision in precisions:
            machine[precision].append(matmul_flops_per_second(args.matmul_size, dtypes[precision], args.device))
        for aggregation, precision, side in sides:
            if args.device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            if side == "ours":
                seconds = ours_seconds(args, aggregation, precision)
            else:
                strategy = "random" if side == "Trainer defaults" else "group_by_length"
                seconds = trainer_seconds(args, rows, aggregation, strategy, bf16=precision == "bf16")
            rates[aggregation, precision, side].append(tokens / seconds)
            memory = ""
            if args.device == "cuda":
                peak_memory[aggregation, precision, side] = torch.cuda.max_memory_allocated() / 2**30
                memory = f"  peak GPU memory {peak_memory[aggregation, precision, side]:.2f} GiB"
            print(f"  repetition {repetition + 1}: {aggregation:4s} {precision} {side:24s} "
                  f"{seconds:7.1f} s  {tokens / seconds:6.0f} tokens/s{memory}", flush=True)

    def ratios(numerator: tuple, denominator: tuple) -> list[float]:
        return [a / b for a, b in zip(rates[numerator], rates[denominator])]

    num_labels = len(get_task(args.task).labels)
    for precision in precisions:
        target = 1.3 if precision == "bf16" else 1.5
        for aggregation in ("last", "dlfa"):
            ours = (aggregation, precision, "ours")
            print(f"RATIO ours / Trainer group_by_length, {aggregation}, {precision} = "
                  f"{spread(ratios(ours, (aggregation, precision, 'Trainer group_by_length')))}  (target >= {target})")
            if peak_memory:
                trainer_memory = peak_memory[aggregation, precision, "Trainer group_by_length"]
                print(f"RATIO peak GPU memory, ours / Trainer group_by_length, {aggregation}, {precision} = "
                      f"{peak_memory[ours] / trainer_memory:.2f}  ({peak_memory[ours]:.2f} / {trainer_memory:.2f} GiB)")
            if precision == "fp32":
                print(f"RATIO ours / Trainer defaults, {aggregation}, fp32 = "
                      f"{spread(ratios(ours, (aggregation, 'fp32', 'Trainer defaults')))}  (target >= 2.5)")
        step_ratio = ratios(("last", precision, "ours"), ("dlfa", precision, "ours"))  # time ratio = inverse rates
        print(f"RATIO DLFA step / last step, ours, {precision} = {spread(step_ratio)}  (target <= 1.05)")
        print(f"machine: {precision} {args.matmul_size}² matmul {statistics.median(machine[precision]) / 1e9:.1f} "
              f"GFLOP/s (median over repetitions)")
        for aggregation in ("last", "dlfa"):
            per_token = training_flops_per_token(args.encoder, aggregation, data.lengths, num_labels)
            fractions = [rate * per_token / peak for rate, peak in zip(rates[aggregation, precision, "ours"],
                                                                      machine[precision])]
            print(f"RATIO training FLOP rate / {precision} matmul rate, ours, {aggregation} = {spread(fractions)}  "
                  f"(target >= 0.35; {per_token / 1e6:.1f} MFLOP per token)")
    for precision in precisions:
        evaluated, rate = evaluation_tokens_per_second(args, precision)
        print(f"evaluation, {precision}: {len(eval_languages(args))} languages x {args.eval_sentences} sentences, "
              f"{evaluated} tokens, {rate:.0f} tokens/s")


if __name__ == "__main__":
    main()
