"""Peak resident memory (RSS) of a CPU fine-tune of the embedded encoder (target <= 1.5 GB).

Runs one job (dlfa, layer 6, --train-examples UD-POS sentences for one epoch, then evaluation on German and
Chinese) in a child process and reads the child's peak RSS from the kernel, so nothing of this process counts.

    python bench/memory.py [--train-examples 1000] [--precision fp32]
"""
import resource
import subprocess
import sys
import tempfile
import time

from common import REPO, parser

CHILD = """
import sys
from dlfa.jobs.spec import JobSpec
from dlfa.train import run_job
spec = JobSpec(task="udpos", eval_languages=("de", "zh"), encoder=sys.argv[1], data_root=sys.argv[2],
               fusion_layers=(6,), max_train_examples=int(sys.argv[3]), max_eval_examples=300, epochs=1,
               batch_size=int(sys.argv[4]), device="cpu", precision=sys.argv[6])
run = run_job(spec, sys.argv[5])["runs"][0]
print(f"steps {run['steps']}, train {run['train_seconds']:.0f} s, {run['precision']}, "
      f"de {run['metrics']['de']['value']:.1f}, zh {run['metrics']['zh']['value']:.1f}")
"""


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--precision", default="auto", help="auto (bf16 where the CPU computes it natively), fp32, bf16")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, args.encoder, args.data_root, str(args.train_examples),
                               str(args.batch_size), out, args.precision], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr[-3000:])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kilobytes on Linux
    print(done.stdout.strip())
    print(f"{args.train_examples} sentences, batch {args.batch_size}, {time.perf_counter() - started:.0f} s in all")
    print(f"PEAK RSS of the fine-tune = {peak_mb:.0f} MB  (target <= 1536 MB)")


if __name__ == "__main__":
    main()
