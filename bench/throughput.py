"""Training throughput (non-padding tokens per second) of our trainer ÷ a plain Hugging Face `Trainer`
on the same model, encoder, data, batch size and frozen word embeddings, at the same precision.

    ours (fp32) ÷ Trainer with its defaults (fp32, random batches, dynamic padding)     target >= 2.0
    ours (fp32) ÷ Trainer with train_sampling_strategy="group_by_length" (fp32)         target >= 1.1
    ours (bf16) ÷ Trainer group_by_length + bf16, where the machine computes bf16 natively  reported

Every side trains one epoch over the same sentences, so each processes the same non-padding tokens; the
time is the training loop only (ours: train_seconds; Trainer: train_runtime). A short untimed run of ours
comes first, so that no side pays for the process's first kernels.

    python bench/throughput.py [--train-examples 400]
"""
import argparse
import json
import tempfile
from pathlib import Path

import torch
from common import parser, train_split
from torch import nn

from dlfa.encoders import load_encoder
from dlfa.jobs.spec import JobSpec
from dlfa.model import DlfaConfig, DlfaModel, HeadConfig
from dlfa.tasks.registry import get_task
from dlfa.train import run_job


class ForTrainer(nn.Module):
    """DlfaModel with the signature and output the Trainer expects; counts the padded tokens it is fed."""

    def __init__(self, model: DlfaModel):
        super().__init__()
        self.model = model
        self.padded_tokens = 0

    def forward(self, input_ids, attention_mask, labels=None):
        self.padded_tokens += input_ids.numel()
        out = self.model(input_ids, attention_mask, labels=labels)
        return {"loss": out.loss, "logits": out.logits}


def hf_trainer_seconds(args, data, strategy: str, bf16: bool) -> tuple[float, int]:
    from datasets import Dataset
    from transformers import DataCollatorForTokenClassification, Trainer, TrainingArguments

    loaded = load_encoder(args.encoder)
    task = get_task("udpos")
    torch.manual_seed(0)
    model = DlfaModel(DlfaConfig(args.encoder, {"udpos": HeadConfig("token", list(task.labels))}, "dlfa", 6),
                      loaded.model)  # word embeddings frozen, as in ours on the CPU
    rows = [{"input_ids": data.input_ids[data.offsets[i]:data.offsets[i + 1]].tolist(),
             "labels": data.labels[data.offsets[i]:data.offsets[i + 1]].tolist()} for i in range(len(data))]
    training = TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size, num_train_epochs=1,
        learning_rate=5e-5, weight_decay=0.01, warmup_steps=0.1, max_grad_norm=1.0, seed=1, use_cpu=True,
        report_to="none", save_strategy="no", logging_strategy="no", disable_tqdm=True,
        train_sampling_strategy=strategy, bf16=bf16)
    net = ForTrainer(model)
    trainer = Trainer(model=net, args=training, train_dataset=Dataset.from_list(rows),
                      data_collator=DataCollatorForTokenClassification(loaded.tokenizer))
    return trainer.train().metrics["train_runtime"], net.padded_tokens


def ours_seconds(args, precision: str, train_examples: int | None = None) -> tuple[float, int]:
    spec = JobSpec(task="udpos", eval_languages=("de",), encoder=args.encoder, data_root=args.data_root,
                   fusion_layers=(6,), max_train_examples=train_examples or args.train_examples, max_eval_examples=8,
                   epochs=1, batch_size=args.batch_size, bootstrap_samples=10, precision=precision)
    with tempfile.TemporaryDirectory() as out:
        run = run_job(spec, Path(out), resume=False)["runs"][0]
    return run["train_seconds"], padded_tokens(spec, run["steps"])


def padded_tokens(spec: JobSpec, steps: int) -> int:
    """Tokens (padding included) that our first `steps` batches feed the model: the trainer's stream for
    (seed, stage 0, task 0), cut into the slices a CPU step runs."""
    from dlfa.encoders import load_tokenizer
    from dlfa.train import CPU_TOKENS_PER_SLICE, BatchStream, token_slices

    data = train_split(argparse.Namespace(data_root=spec.data_root, train_examples=spec.max_train_examples),
                       load_tokenizer(spec.encoder))
    stream = BatchStream(data.lengths, spec.batch_size, [spec.seeds[0], 0, 0])
    return sum(piece["input_ids"].numel() for _ in range(steps)
               for piece, _ in token_slices(data.collate(stream.next()), CPU_TOKENS_PER_SLICE))


def main() -> None:
    from dlfa.train import cpu_has_bf16

    args = parser(__doc__).parse_args()
    data = train_split(args, load_encoder(args.encoder).tokenizer)
    tokens = int(data.lengths.sum())
    ours_seconds(args, "fp32", train_examples=2 * args.batch_size)  # warm-up
    sides = {"ours fp32": ours_seconds(args, "fp32"),
             "Trainer defaults": hf_trainer_seconds(args, data, "random", bf16=False),
             "Trainer group_by_length": hf_trainer_seconds(args, data, "group_by_length", bf16=False)}
    if cpu_has_bf16():  # where bf16 is only emulated it is slower than fp32 on both sides
        sides["ours bf16"] = ours_seconds(args, "bf16")
        sides["Trainer group_by_length + bf16"] = hf_trainer_seconds(args, data, "group_by_length", bf16=True)
    print(f"{len(data)} sentences, {tokens} non-padding tokens, batch {args.batch_size}, {torch.get_num_threads()} threads")
    for name, (seconds, padded) in sides.items():
        print(f"{name:32s} {seconds:7.1f} s  {tokens / seconds:7.0f} tokens/s  padded/real tokens {padded / tokens:.2f}")
    rate = {name: tokens / seconds for name, (seconds, _) in sides.items()}
    print(f"RATIO ours / Trainer defaults        = {rate['ours fp32'] / rate['Trainer defaults']:.2f}  (target >= 2.0)")
    print(f"RATIO ours / Trainer group_by_length = {rate['ours fp32'] / rate['Trainer group_by_length']:.2f}  (target >= 1.1)")
    if "ours bf16" in rate:
        print(f"RATIO ours / Trainer group_by_length, both bf16 = "
              f"{rate['ours bf16'] / rate['Trainer group_by_length + bf16']:.2f}")
    print(json.dumps({name: round(r, 1) for name, r in rate.items()}))


if __name__ == "__main__":
    main()
