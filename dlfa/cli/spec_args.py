"""The flags of one job (`add_spec_arguments`) and the one place that turns them into a validated JobSpec
(`spec_from_args`), over a recorded spec (`--spec`: a JSON spec or a results.json) when one is given."""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from dlfa.engine.spec import (DEVICES, INTERMEDIATE_MODES, INTERMEDIATE_ONLY, POOLINGS, PRECISIONS,
                              RETRIEVAL_TASKS, JobSpec, parse_float_list, parse_int_list, split_list)
from dlfa.errors import ConfigError, DataError, DlfaError
from dlfa.model.fusion import AGGREGATIONS
from dlfa.results import RESULTS_FILE, parse_results, read_results

DEFAULTS = JobSpec(task="", eval_languages=())  # the field defaults, shown in --help


def add_spec_arguments(parser: argparse.ArgumentParser, sweep: bool, out_required: bool) -> None:
    """The flags of one job; `sweep` adds the plural forms (--aggregations, --fusion-layers, --seeds)."""
    parser.set_defaults(single_run=not sweep)
    parser.add_argument("--spec", metavar="FILE",
                        help="start from a recorded job spec: a JSON spec or a results.json (e.g. one under "
                             "docs/reproduction/); the flags given replace its fields")
    parser.add_argument("--task", help="target task, e.g. pawsx, xnli, panx, udpos (required without --spec), or "
                                       f"{INTERMEDIATE_ONLY}: the intermediate tasks alone")
    parser.add_argument("--encoder", help=f"embedded:e5-small | hub id | local folder (default {DEFAULTS.encoder})")
    choice = parser.add_mutually_exclusive_group() if sweep else parser
    choice.add_argument("--aggregation", choices=AGGREGATIONS,
                        help=f"how layers are combined (default {DEFAULTS.aggregations[0]})")
    if sweep:
        choice.add_argument("--aggregations", help="several aggregations, e.g. last,dlfa")
    choice = parser.add_mutually_exclusive_group() if sweep else parser
    choice.add_argument("--fusion-layer", type=int, metavar="K",
                        help=f"lower layer fused with the last, 0 = embeddings (default {DEFAULTS.fusion_layers[0]})")
    if sweep:
        choice.add_argument("--fusion-layers", metavar="LIST", help="several fusion layers, e.g. 0-11 or 2,6,10")
    parser.add_argument("--train-lang", metavar="LANG", help=f"training language (default {DEFAULTS.train_language})")
    parser.add_argument("--eval-langs", metavar="L1,L2,...",
                        help="zero-shot evaluation languages (required without --spec)")
    parser.add_argument("--intermediate", metavar="T1,T2,...",
                        help="English intermediate tasks trained first (the target task itself: the study's control; "
                             f"--task {INTERMEDIATE_ONLY} trains only these and saves the model for --init-from)")
    parser.add_argument("--intermediate-mode", choices=INTERMEDIATE_MODES,
                        help="sequential: one stage per intermediate task; mixture: one stage, each batch drawn from "
                             f"one task in proportion to its size (default {DEFAULTS.intermediate_mode})")
    parser.add_argument("--intermediate-steps", type=int, metavar="S",
                        help="one budget of optimizer steps that all intermediate tasks share (mixture: one stage; "
                             "sequential: split equally), instead of each stage's --epochs/--max-steps")
    parser.add_argument("--init-from", metavar="DIR",
                        help="start the encoder from a finished run's trained encoder: its unit folder, or a job "
                             "folder (its unit of the same seed); tatoeba: measure that encoder (a DLFA run's fused "
                             "representation too); --encoder defaults to the run's base encoder")
    parser.add_argument("--data-root", metavar="DIR",
                        help="folder of local data files (default $DLFA_DATA_DIR, the classroom pack, else the hub)")
    parser.add_argument("--max-train-examples", type=int, metavar="N", help="cap on training examples per task")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=float, metavar="E", help=f"epochs per stage (default {DEFAULTS.epochs:g})")
    budget.add_argument("--max-steps", type=int, metavar="S", help="optimizer steps per stage (instead of epochs)")
    choice = parser.add_mutually_exclusive_group() if sweep else parser
    choice.add_argument("--seed", type=int, metavar="S", help=f"random seed (default {DEFAULTS.seeds[0]})")
    if sweep:
        choice.add_argument("--seeds", metavar="LIST", help="several seeds, e.g. 1,2,3")
    parser.add_argument("--probe", action="store_true", help="freeze the encoder (train fusion and head only)")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write losses, dev scores and results as TensorBoard events under <out>/tensorboard/")
    parser.add_argument("--batch-size", type=int, metavar="B",
                        help=f"examples per step (default {DEFAULTS.batch_size})")
    choice = parser.add_mutually_exclusive_group() if sweep else parser
    choice.add_argument("--lr", type=float,
                        help=f"learning rate (default {DEFAULTS.learning_rate:g}); replaces a --spec's "
                             "learning-rate grid")
    if sweep:
        choice.add_argument("--learning-rates", metavar="LIST",
                            help="a learning-rate grid, e.g. 2e-5,5e-5,1e-4: one run per rate; results.json records "
                                 "each configuration's best rate on English dev and every candidate's dev score")
    parser.add_argument("--patience", type=int, metavar="N",
                        help="early stopping: stop the target task once N English dev evaluations (each epoch, or "
                             "every eval_every steps) bring no improvement; the best dev state is evaluated")
    parser.add_argument("--eval-every", type=int, metavar="S",
                        help="steps between English dev evaluations of the target task (default: each epoch's end)")
    parser.add_argument("--max-epochs", type=float, metavar="E",
                        help="with --patience: the cap on the target task's epochs (replaces --epochs/--max-steps "
                             "there)")
    parser.add_argument("--pooling", choices=POOLINGS,
                        help="sentence and pair tasks: cls = the fused first token (as the paper; with fusion layer "
                             "0 it fuses a constant), mean = the mean over the real tokens (default "
                             f"{DEFAULTS.pooling})")
    parser.add_argument("--device", choices=DEVICES, help="default auto: a GPU when there is one")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="default auto: bf16 autocast where the GPU or CPU computes bf16 natively, else fp32")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the encoder: fewer, fused kernels, meant for GPUs (there a step otherwise "
                             "waits on the CPU launching a few thousand small ones); the first steps compile")
    parser.add_argument("--max-length", type=int, metavar="T",
                        help=f"tokens per example (default {DEFAULTS.max_length})")
    parser.add_argument("--cpu-slice-tokens", type=int, metavar="N",
                        help="on the CPU, run a batch's encoder in row slices of at most N padded tokens to bound "
                             f"memory (default {DEFAULTS.cpu_tokens_per_slice}: a 1,000-sentence fine-tune of the "
                             "embedded encoder stays under 1.5 GB); 0 never slices: about 20%% faster for DLFA, about "
                             "3.6 GB; loss and gradients are the whole batch's either way")
    parser.add_argument("--max-eval-examples", type=int, metavar="N",
                        help="cap on test examples per language (tatoeba: sentence pairs per language)")
    parser.add_argument("--layer", type=int, metavar="K",
                        help="tatoeba: the layer whose accuracies are the job's metrics (default XTREME's choice: "
                             "7 of 12 layers); every layer is measured")
    parser.add_argument("--name", help="a label for the run")
    parser.add_argument("--out", required=out_required, metavar="DIR",
                        help="output folder" + ("" if out_required else " (default cache/runs/<job id>/)"))


def _absolute_if_path(value: str | None) -> str | None:
    """Relative paths in a spec are made absolute, so a job runs the same from any folder."""
    if value is None or not (value.startswith((".", "~")) or Path(value).exists()):
        return value
    return str(Path(value).expanduser().resolve())


def read_spec_file(path: str) -> JobSpec:
    """The JobSpec in a JSON file: a spec itself, or a job's or run's results.json (which records its "spec")."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the job spec {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"the job spec {path} is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and "spec" in data:  # a results.json
        try:
            data = parse_results(data, path).spec
        except DataError as exc:
            raise ConfigError(str(exc)) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds no job spec (a JSON object with 'task' and 'eval_languages')")
    try:
        return JobSpec.from_dict(data)
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"the job spec in {path}: {exc}") from exc


def run_encoder_spec(folder: str) -> str:
    """The base encoder a finished job or run (its folder) was trained from, or a saved model (its folder);
    ConfigError naming the folder."""
    from dlfa.model.modeling import CONFIG_FILE

    try:
        if (Path(folder) / CONFIG_FILE).is_file() and not (Path(folder) / RESULTS_FILE).is_file():
            return json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))["encoder"]
        return read_results(folder).spec["encoder"]
    except (DlfaError, OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"--init-from {folder}: not a finished run or a saved model ({exc})") from exc


def spec_from_args(args: argparse.Namespace) -> JobSpec:
    """The one place that turns train / sweep / submit flags into a validated JobSpec: the flags given, over the
    fields of --spec when there is one, else over JobSpec's defaults."""
    values = {
        "task": args.task,
        "eval_languages": split_list(args.eval_langs) if args.eval_langs is not None else None,
        "encoder": _absolute_if_path(args.encoder),
        "train_language": args.train_lang,
        "intermediate_tasks": split_list(args.intermediate) if args.intermediate is not None else None,
        "intermediate_mode": args.intermediate_mode,
        "intermediate_steps": args.intermediate_steps,
        "init_from": str(Path(args.init_from).expanduser().resolve()) if args.init_from else None,
        "data_root": _absolute_if_path(args.data_root),
        "max_train_examples": args.max_train_examples,
        "max_eval_examples": args.max_eval_examples,
        "retrieval_layer": args.layer,
        "epochs": args.epochs,
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "patience": args.patience,
        "eval_every": args.eval_every,
        "max_epochs": args.max_epochs,
        "pooling": args.pooling,
        "device": args.device,
        "precision": args.precision,
        "compile_model": args.compile or None,
        "max_length": args.max_length,
        "cpu_tokens_per_slice": args.cpu_slice_tokens,
        "probe": args.probe or None,
        "tensorboard": args.tensorboard or None,
        "name": args.name,
        "backend": getattr(args, "backend", None),
        "num_processes": getattr(args, "nproc", None),
    }
    if getattr(args, "aggregations", None):
        values["aggregations"] = split_list(args.aggregations)
    elif args.aggregation:
        values["aggregations"] = (args.aggregation,)
    if getattr(args, "fusion_layers", None):
        values["fusion_layers"] = parse_int_list(args.fusion_layers, "--fusion-layers")
    elif args.fusion_layer is not None:
        values["fusion_layers"] = (args.fusion_layer,)
    if getattr(args, "learning_rates", None):
        values["learning_rates"] = parse_float_list(args.learning_rates, "--learning-rates")
    elif args.lr is not None:
        values["learning_rates"] = ()  # one rate: it replaces a learning-rate grid the --spec may hold
    if getattr(args, "seeds", None):
        values["seeds"] = parse_int_list(args.seeds, "--seeds")
    elif args.seed is not None:
        values["seeds"] = (args.seed,)
    given = {key: value for key, value in values.items() if value is not None}
    if "init_from" in given and "encoder" not in given:
        try:
            given["encoder"] = run_encoder_spec(given["init_from"])
        except ConfigError:
            if given.get("task") in RETRIEVAL_TASKS:  # a measurement needs the run now
                raise
            # a training job checks its init_from when it starts (a study queues it while its arm still trains)
    if args.spec:
        if "epochs" in given:
            given.setdefault("max_steps", None)  # --epochs replaces a step budget the spec may have
        return replace(read_spec_file(args.spec), **given).validate()
    missing = [flag for flag, key in (("--task", "task"), ("--eval-langs", "eval_languages")) if not given.get(key)]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required "
                          "(or start from a recorded job with --spec FILE)")
    return JobSpec(**given).validate()
