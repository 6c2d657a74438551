"""Shared settings of the benchmarks: the data root, the encoder, and the non-padding token count of a split.

Each benchmark measures every side of its ratio in one run, on the same machine state, so the ratios
hold on any machine even though the absolute times do not."""
from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--encoder", default="embedded:e5-small")
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    p.add_argument("--train-examples", type=int, default=400, help="English UD-POS training sentences")
    p.add_argument("--batch-size", type=int, default=32)
    return p


def train_split(args, tokenizer, task: str = "udpos"):
    """The first --train-examples English training sentences of a token task (UD-POS) as an EncodedDataset."""
    from dlfa.data.registry import DataSource, load_encoded
    from dlfa.engine.datasets import EncodedDataset

    split = load_encoded(task, "en", "train", DataSource.resolve(args.data_root), tokenizer, 128,
                         max_examples=args.train_examples)
    return EncodedDataset(split, tokenizer.pad_token_id)


def udpos_side(args, encoder, data, aggregation: str, precision: str, slice_tokens: int, steps: int,
               fast_dropout: bool = True, task_name: str = "udpos", compile_model: bool = False):
    """One side of a step benchmark: the engine's UnitTrainer fine-tuning `encoder` with `aggregation` on the UD-POS
    split `data` (or another tagging task's: task_name; fusion layer --fusion-layer for DLFA), on the runtime's device
    (`encoder` torch.compile'd in place with compile_model: dlfa.engine.job.compile_encoder), its length-grouped
    batch stream (the same batches on every side), AdamW and the trained parameters: (trainer, streams, optimizer,
    params). Run a step with `trainer.train_step(0, trainer.stages[0], streams, step, optimizer, params)`."""
    import tempfile

    import torch

    from dlfa.data.registry import get_task
    from dlfa.engine.batching import BatchStream
    from dlfa.engine.callbacks import CallbackList
    from dlfa.engine.cpu_dropout import use_fast_cpu_dropout
    from dlfa.engine.datasets import UnitData
    from dlfa.engine.job import compile_encoder
    from dlfa.engine.runtime import setup_runtime
    from dlfa.engine.schedule import build_optimizer
    from dlfa.engine.spec import JobSpec
    from dlfa.engine.train import UnitTrainer
    from dlfa.model.modeling import DlfaConfig, DlfaModel, HeadConfig

    task = get_task(task_name)
    fusion_layer = args.fusion_layer if aggregation == "dlfa" else None
    spec = JobSpec(task=task_name, eval_languages=("de",), encoder=args.encoder, aggregations=(aggregation,),
                   fusion_layers=(fusion_layer,) if fusion_layer is not None else (), batch_size=args.batch_size,
                   max_steps=steps, precision=precision, cpu_tokens_per_slice=slice_tokens, compile_model=compile_model)
    runtime = setup_runtime(spec)
    torch.manual_seed(0)
    head = {task_name: HeadConfig(task.kind, list(task.labels))}
    model = DlfaModel(DlfaConfig(args.encoder, head, aggregation, fusion_layer), encoder).to(runtime.device)
    if fast_dropout and runtime.device.type == "cpu":
        use_fast_cpu_dropout(model)
    unit_data = UnitData(tasks={task_name: task}, train={task_name: data}, dev=None, test={}, majority=0)
    if compile_model:
        compile_encoder(model)
    trainer = UnitTrainer(spec, tempfile.mkdtemp(), model, model, unit_data, runtime, CallbackList(), (0, 1))
    streams = {task_name: BatchStream(data.lengths, args.batch_size, [1, 0, 0])}
    optimizer = build_optimizer(model, spec, spec.learning_rate, runtime.device)
    return trainer, streams, optimizer, [q for q in model.parameters() if q.requires_grad]
