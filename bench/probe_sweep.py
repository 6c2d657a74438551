"""Probe-mode 12-layer sweep ÷ one full single-layer fine-tune (reported; the point of probe mode is that the
sweep costs a small multiple of one run, not twelve).

Both jobs train one epoch on the same English UD-POS sentences and evaluate on the same languages, with an
empty cache folder, so the sweep pays for computing and caching the hidden states. The sweep runs first and
also pays for tokenizing, which the fine-tune then reuses: the ratio errs against probe mode.

    python bench/probe_sweep.py [--train-examples 400] [--eval-langs de,zh]
"""
import os
import tempfile
import time
from pathlib import Path

from common import parser


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--eval-langs", default="de,zh")
    p.add_argument("--max-eval-examples", type=int, default=300)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as root:
        os.environ["DLFA_CACHE_DIR"] = str(Path(root) / "cache")  # before dlfa reads it
        from dlfa.model.encoders import encoder_info
        from dlfa.engine.spec import JobSpec
        from dlfa.engine.job import run_job

        layers = tuple(range(encoder_info(args.encoder).num_layers))
        base = JobSpec(task="udpos", eval_languages=tuple(args.eval_langs.split(",")), encoder=args.encoder,
                       data_root=args.data_root, max_train_examples=args.train_examples,
                       max_eval_examples=args.max_eval_examples, epochs=1, batch_size=args.batch_size)
        timed = {}
        for name, spec in (("sweep", JobSpec(**{**base.to_dict(), "fusion_layers": layers, "probe": True})),
                           ("fine-tune", base)):
            started = time.perf_counter()
            results = run_job(spec, Path(root) / name)
            timed[name] = time.perf_counter() - started
            print(f"{name}: {len(results['runs'])} run(s) in {timed[name]:.0f} s")
    print(f"{args.train_examples} sentences, {len(layers)} fusion layers, evaluation on {args.eval_langs}")
    print(f"RATIO probe sweep of {len(layers)} layers / one fine-tune = {timed['sweep'] / timed['fine-tune']:.2f}")


if __name__ == "__main__":
    main()
