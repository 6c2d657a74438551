"""Where a training step's time goes on a GPU: torch.profiler over the engine's own `train_step`
(bench/common.udpos_side: length-grouped POS batches, AdamW, DLFA at --fusion-layer), per batch size and precision
(fp32 computes in TF32 on a GPU). Per configuration: the median step's wall time (unprofiled: the profiler slows
the CPU side several-fold), the GPU's kernel time per step (the union of its kernels' intervals, profiled) and its
share of that step, kernels launched and synchronizations (the CPU waiting for the GPU) per step, and the CPU time
per step of the operators that launch them (profiled); then, for the first configuration, the kernels that take the
most GPU time.
A GPU busy for a small share of the step waits on the CPU (Python, operator dispatch, kernel launches): bigger
batches, or fewer and larger kernels, would fill it; a faster matmul precision would not. With --compile each
configuration runs eager and then torch.compile'd (JobSpec.compile_model: fused kernels), with the seconds its
warm-up steps took (they compile) and the ratio of the median steps.

    python bench/gpu_profile.py --encoder cache/mbert-shaped --data-root cache/pack --batch-sizes 32,128 --compile
"""
import statistics
import time

import torch
from common import parser, train_split, udpos_side
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from dlfa.engine.spec import JobSpec
from dlfa.model.encoders import load_encoder, load_tokenizer

WARMUP_STEPS = 3  # allocator, cuBLAS handles and autotuning settle in these


def busy_microseconds(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of (start, end) intervals."""
    busy, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return busy


def timed_steps(trainer, stream, optimizer, params, steps: range, synchronize) -> list[float]:
    """Seconds of each training step in `steps`, each waited for to its end on the GPU."""
    times = []
    for step in steps:
        started = time.perf_counter()
        trainer.train_step(0, trainer.stages[0], stream, step, optimizer, params)
        synchronize()
        times.append(time.perf_counter() - started)
    return times


def profile_steps(args, encoder, data, batch_size: int, precision: str, compiled: bool):
    """(the median step's seconds unprofiled, the profiler over as many further steps, the precision used, the
    warm-up steps' seconds)."""
    args.batch_size = batch_size
    trainer, stream, optimizer, params = udpos_side(args, encoder, data, "dlfa", precision,
                                                    JobSpec.cpu_tokens_per_slice, WARMUP_STEPS + 2 * args.steps,
                                                    task_name=args.task, compile_model=compiled)
    on_gpu = trainer.runtime.device.type == "cuda"
    synchronize = torch.cuda.synchronize if on_gpu else (lambda: None)
    side = (trainer, stream, optimizer, params)
    warmup = sum(timed_steps(*side, range(WARMUP_STEPS), synchronize))
    unprofiled = timed_steps(*side, range(WARMUP_STEPS, WARMUP_STEPS + args.steps), synchronize)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as profiler:
        timed_steps(*side, range(WARMUP_STEPS + args.steps, WARMUP_STEPS + 2 * args.steps), synchronize)
    return statistics.median(unprofiled), profiler, trainer.runtime.precision, warmup


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--batch-sizes", default="32,128")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--fusion-layer", type=int, default=6)
    p.add_argument("--task", default="pos-classroom", help="a POS task of the data root (UPOS tags)")
    p.add_argument("--top", type=int, default=8, help="the table of the operators that take the most time (0: none)")
    p.add_argument("--compile", action="store_true", help="each configuration eager, then torch.compile'd")
    args = p.parse_args()
    args.train_examples = max(args.train_examples, 4000)
    data = train_split(args, load_tokenizer(args.encoder), args.task)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"encoder {args.encoder}, DLFA layer {args.fusion_layer}, {args.steps} steps timed then {args.steps} "
          f"profiled, {device}")
    first = None
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        for precision in args.precisions.split(","):
            eager_step = None
            for compiled in (False, True) if args.compile else (False,):
                encoder = load_encoder(args.encoder).model  # each side from the same weights, and compiled or not
                step, profiler, used, warmup = profile_steps(args, encoder, data, batch_size, precision, compiled)
                events = profiler.events()
                kernels = [e for e in events if e.device_type == DeviceType.CUDA]
                busy = busy_microseconds([(e.time_range.start, e.time_range.end) for e in kernels]) / 1e6 / args.steps
                cpu_ops = sum(e.self_cpu_time_total for e in events if e.device_type == DeviceType.CPU) / 1e6
                waits = sum("Synchronize" in e.name for e in events)  # the CPU waiting for the GPU (e.g. loss.item())
                how = ("compiled" if compiled else "eager") if args.compile else ""
                print(f"batch {batch_size:4d} {used:5s} {how}: median step {step * 1000:6.1f} ms; GPU kernels "
                      + (f"{busy * 1000:5.1f} ms a step ({100 * busy / step:4.1f}% of the step)" if kernels else "n/a")
                      + f"; {len(kernels) / args.steps:.0f} kernels and {waits / args.steps:.0f} waits for the GPU a "
                      f"step; operators' own CPU time under the profiler {1000 * cpu_ops / args.steps:.1f} ms a step"
                      + (f"; {WARMUP_STEPS} warm-up steps {warmup:.1f} s; eager step ÷ compiled step "
                         f"{eager_step / step:.2f}" if compiled else ""), flush=True)
                eager_step = step
                first = first or (batch_size, used, profiler)
    if args.top:
        batch_size, used, profiler = first
        sort = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
        print(f"\nbatch {batch_size} {used}: the operators and kernels that take the most time ({sort})")
        print(profiler.key_averages().table(sort_by=sort, row_limit=args.top, max_name_column_width=60))


if __name__ == "__main__":
    main()
