"""DLFA training step ÷ `last` training step on identical batches (target ≤ 1.05), and on the CPU what the
engine's dropout (dlfa.engine.cpu_dropout) saves (`last` with torch's stock dropout ÷ `last` with ours) and what
slicing batches for memory costs (`last` in slices of --cpu-slice-tokens ÷ `last` never sliced).

`dlfa` and `last` share one encoder (the stock-dropout and unsliced sides a copy each) and draw the same
length-grouped batches through the trainer's own `train_step`; the steps alternate (dlfa, last, last stock,
last unsliced, dlfa, …) so machine noise hits every side alike, and each ratio is of median step times.

    python bench/step_time.py [--steps 12] [--precision auto|fp32|bf16] [--cpu-slice-tokens 512]
"""
import copy
import statistics
import time

import torch
from common import parser, train_split, udpos_side

from dlfa.engine.spec import JobSpec
from dlfa.model.encoders import load_encoder


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--fusion-layer", type=int, default=6)
    p.add_argument("--precision", default="auto")
    p.add_argument("--cpu-slice-tokens", type=int, default=JobSpec.cpu_tokens_per_slice,
                   help="the spec's cpu_tokens_per_slice (0: never slice)")
    args = p.parse_args()
    loaded = load_encoder(args.encoder)
    data = train_split(args, loaded.tokenizer)
    on_cpu = not torch.cuda.is_available()
    encoders = {"dlfa": loaded.model, "last": loaded.model}
    if on_cpu:
        encoders["last, stock dropout"] = copy.deepcopy(loaded.model)
        encoders["last, unsliced"] = copy.deepcopy(loaded.model)
    sides = {}
    for name, encoder in encoders.items():
        trainer, stream, optimizer, params = udpos_side(
            args, encoder, data, name.split(",")[0], args.precision,
            0 if name == "last, unsliced" else args.cpu_slice_tokens, args.steps + 2,
            fast_dropout=name != "last, stock dropout")
        sides[name] = (trainer, stream, optimizer, params, [])
    for step in range(args.steps + 2):
        for trainer, stream, optimizer, params, times in sides.values():
            started = time.perf_counter()
            trainer.train_step(0, trainer.stages[0], stream, step, optimizer, params)
            if step >= 2:  # the first two steps warm up allocators and kernels
                times.append(time.perf_counter() - started)
    dlfa, last = (statistics.median(sides[name][4]) for name in ("dlfa", "last"))
    print(f"encoder {args.encoder}, batch {args.batch_size}, {args.steps} steps each, "
          f"{sides['dlfa'][0].runtime.precision}, {torch.get_num_threads()} threads, "
          f"cpu_tokens_per_slice {args.cpu_slice_tokens}")
    print(f"median step: dlfa (layer {args.fusion_layer}) {dlfa * 1000:.0f} ms, last {last * 1000:.0f} ms")
    print(f"RATIO dlfa / last step time = {dlfa / last:.3f}  (target <= 1.05)")
    if on_cpu:
        stock = statistics.median(sides["last, stock dropout"][4])
        print(f"median step of last with torch's stock dropout: {stock * 1000:.0f} ms")
        print(f"RATIO last step with stock dropout / with the engine's CPU dropout = {stock / last:.3f}")
        unsliced = statistics.median(sides["last, unsliced"][4])
        print(f"median step of last with its batches never sliced: {unsliced * 1000:.0f} ms")
        print(f"RATIO last step in slices of {args.cpu_slice_tokens} tokens / never sliced = {last / unsliced:.3f}")


if __name__ == "__main__":
    main()
