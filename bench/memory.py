"""Peak resident memory (RSS) of a CPU fine-tune of the embedded encoder (target <= 1.5 GB), repeated to show
that it is stable.

Each repetition runs one job (dlfa, layer 6, --train-examples UD-POS sentences for one epoch, then evaluation
on German and Chinese) in a fresh child process, which reports its own peak RSS (getrusage), so nothing of
this process counts. --precision and --cpu-slice-tokens take several values (fp32 bf16; 512 0): the repetitions
alternate between their combinations.

    python bench/memory.py [--train-examples 1000] [--precision fp32 bf16] [--cpu-slice-tokens 512 0] [--repetitions 3]
"""
import statistics
import subprocess
import sys
import tempfile
import time

from common import REPO, parser

CHILD = """
import resource, sys
from dlfa.engine.spec import JobSpec
from dlfa.engine.job import run_job
spec = JobSpec(task="udpos", eval_languages=("de", "zh"), encoder=sys.argv[1], data_root=sys.argv[2],
               fusion_layers=(6,), max_train_examples=int(sys.argv[3]), max_eval_examples=300, epochs=1,
               batch_size=int(sys.argv[4]), device="cpu", precision=sys.argv[6], cpu_tokens_per_slice=int(sys.argv[7]))
run = run_job(spec, sys.argv[5])["runs"][0]
print(f"steps {run['steps']}, train {run['train_seconds']:.0f} s, {run['precision']}, "
      f"de {run['metrics']['de']['value']:.1f}, zh {run['metrics']['zh']['value']:.1f}")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # kilobytes on Linux
"""


def peak_rss_mb(args, precision: str, slice_tokens: int) -> tuple[float, str]:
    """(peak RSS in MB, the run's summary line) of one fine-tune in a child process."""
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-c", CHILD, args.encoder, args.data_root, str(args.train_examples),
                               str(args.batch_size), out, precision, str(slice_tokens)],
                              cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    summary, peak = done.stdout.strip().splitlines()[-2:]
    return float(peak), summary


def main() -> None:
    p = parser(__doc__)
    p.set_defaults(train_examples=1000)
    p.add_argument("--precision", nargs="+", default=["auto"],
                   help="auto (bf16 where the CPU computes it natively), fp32, bf16; several alternate")
    p.add_argument("--cpu-slice-tokens", nargs="+", type=int, default=[512],
                   help="the spec's cpu_tokens_per_slice (0: never slice); several alternate")
    p.add_argument("--repetitions", type=int, default=3)
    args = p.parse_args()
    sides = [(precision, tokens) for precision in args.precision for tokens in args.cpu_slice_tokens]
    peaks: dict[tuple[str, int], list[float]] = {side: [] for side in sides}
    for repetition in range(args.repetitions):
        for precision, tokens in sides:
            started = time.perf_counter()
            peak, summary = peak_rss_mb(args, precision, tokens)
            peaks[precision, tokens].append(peak)
            print(f"  repetition {repetition + 1}, {precision}, slices of {tokens or 'any'} tokens: {summary}; "
                  f"{time.perf_counter() - started:.0f} s in all; peak RSS {peak:.0f} MB", flush=True)
    print(f"{args.train_examples} sentences, batch {args.batch_size}")
    for (precision, tokens), values in peaks.items():
        print(f"PEAK RSS of the fine-tune, {precision}, cpu_tokens_per_slice {tokens} = {max(values):.0f} MB max, "
              f"median {statistics.median(values):.0f} (min {min(values):.0f}) over {len(values)} runs  "
              "(target <= 1536 MB)")

if __name__ == "__main__":
    main()
