"""`python -m dlfa layers` (translation retrieval and CKA against English per layer, dlfa.analysis.layers) and
`python -m dlfa tatoeba` (Tatoeba sentence retrieval per layer and language, dlfa.analysis.retrieval), of an
encoder or of a fine-tuned run's encoder, without training."""

from __future__ import annotations

import json
from pathlib import Path

from dlfa.errors import ConfigError, DataError


def register(subparsers) -> None:
    layers = subparsers.add_parser("layers", help="retrieval accuracy and CKA against English per layer, of an "
                                   "encoder or of a fine-tuned run's encoder")
    add_encoder_arguments(layers)
    layers.add_argument("--langs", metavar="L1,L2,...", help="languages with text parallel to English (default all)")
    layers.add_argument("--pairs", type=int, default=200, metavar="N", help="sentence pairs per language (default 200)")
    layers.add_argument("--data-root", metavar="DIR", help="the data root (default $DLFA_DATA_DIR, else the pack)")
    layers.add_argument("--json", action="store_true", help="print the whole analysis as JSON")
    layers.set_defaults(func=run_layers)

    tatoeba = subparsers.add_parser("tatoeba", help="Tatoeba sentence retrieval (XTREME's protocol) per layer and "
                                    "language, of an encoder or of a fine-tuned run's encoder, without training")
    add_encoder_arguments(tatoeba)
    tatoeba.add_argument("--langs", metavar="L1,L2,...", help="project or LASER codes: de,fr or deu,fra "
                         "(default: all the data holds)")
    tatoeba.add_argument("--layers", default="all", help="all | a range (0-12) | a list (4,8,12); 0 = embeddings")
    tatoeba.add_argument("--max-sentences", type=int, metavar="N", help="the first N pairs per language (default all)")
    tatoeba.add_argument("--data-root", metavar="DIR", help="a data root or a folder of LASER's Tatoeba files "
                         "(default $DLFA_DATA_DIR, else the pack, else the hub)")
    tatoeba.add_argument("--bootstrap-samples", type=int, default=1000, metavar="N", help="resamples per interval")
    tatoeba.add_argument("--json", action="store_true", help="print the whole result as JSON")
    tatoeba.add_argument("--out", metavar="FILE", help="also write the result as JSON to FILE")
    tatoeba.set_defaults(func=run_tatoeba)


def add_encoder_arguments(parser) -> None:
    """`--encoder SPEC | --run FOLDER`, read back by `encoder_from_args`."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--encoder", default="embedded:e5-small", help="embedded:e5-small | hub id | local folder")
    which.add_argument("--run", metavar="FOLDER", help="a run folder with a saved model (e.g. OUT/dlfa-L6-s1)")


def encoder_from_args(args):
    """(name, dlfa.model.encoders.LoadedEncoder) of `--encoder` or of `--run`'s fine-tuned encoder."""
    from dlfa.analysis.layers import fine_tuned_encoder, run_model_dir
    from dlfa.model.encoders import load_encoder

    if args.run:
        model_dir = run_model_dir(args.run)
        return str(model_dir), fine_tuned_encoder(model_dir)
    return args.encoder, load_encoder(args.encoder)


def run_layers(args) -> int:
    from dlfa.analysis.layers import available_parallel_languages, layer_analysis, mean_over_languages, parallel_pairs
    from dlfa.data.sources import DataSource
    from dlfa.engine.spec import split_list

    source = DataSource.resolve(args.data_root)
    available = available_parallel_languages(source)
    languages = list(split_list(args.langs)) or available
    unknown = [lang for lang in languages if lang not in available]
    if unknown:
        raise ConfigError(f"no text parallel to English for {', '.join(unknown)} in {source}: "
                          f"choose from {', '.join(available)}")
    if args.pairs < 2:
        raise ConfigError(f"--pairs must be at least 2, got {args.pairs}")
    name, loaded = encoder_from_args(args)
    result = layer_analysis(name, parallel_pairs(source, languages, args.pairs), args.pairs, loaded=loaded)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    retrieval, cka = mean_over_languages(result.retrieval), mean_over_languages(result.cka)
    print(f"{name}: mean over {', '.join(result.languages)} ({min(result.n_pairs.values())}+ pairs each)")
    print("layer  retrieval  CKA")
    for layer, (r, c) in enumerate(zip(retrieval, cka)):
        print(f"{layer:>5}  {r:9.3f}  {c:.3f}")
    return 0


def run_tatoeba(args) -> int:
    from dlfa.analysis.retrieval import parse_layers, tatoeba_retrieval
    from dlfa.data.tatoeba import TATOEBA_SUBFOLDER, available_tatoeba_languages, read_tatoeba, tatoeba_language
    from dlfa.data.sources import DataSource
    from dlfa.engine.spec import split_list

    if args.max_sentences is not None and args.max_sentences < 2:
        raise ConfigError(f"--max-sentences must be at least 2, got {args.max_sentences}")
    if args.bootstrap_samples < 0:
        raise ConfigError(f"--bootstrap-samples must be 0 or more, got {args.bootstrap_samples}")
    if args.out and not Path(args.out).resolve().parent.is_dir():  # refused now, not after the whole measurement
        raise ConfigError(f"--out {args.out}: the folder {Path(args.out).resolve().parent} does not exist")
    layers = parse_layers(args.layers)
    source = DataSource.resolve(args.data_root)
    languages = [tatoeba_language(code) for code in split_list(args.langs)] or available_tatoeba_languages(source)
    if not languages:
        raise DataError(f"no Tatoeba files in {source}: expected {TATOEBA_SUBFOLDER}/tatoeba.deu-eng.deu and "
                        "tatoeba.deu-eng.eng, ...")
    pools = [read_tatoeba(source, language, args.max_sentences) for language in dict.fromkeys(languages)]
    name, loaded = encoder_from_args(args)
    result = tatoeba_retrieval(name, loaded, pools, layers, args.bootstrap_samples, source=source.describe())
    if args.out:
        result.write(args.out)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print_tatoeba(result)
    return 0


def print_tatoeba(result) -> None:
    """The layer × language grid of averaged accuracies of a dlfa.analysis.retrieval.TatoebaResult, then each
    language's directions and interval at the layer with the best mean."""
    sizes = ", ".join(f"{language} {n}" for language, n in result.n_sentences.items())
    print(f"{result.encoder} on Tatoeba from {result.source} (sentence pairs: {sizes})")
    print("accuracy (%), mean of xx→en and en→xx")
    print("layer " + "".join(f"{language:>7}" for language in result.languages) + "   mean")
    means = result.mean_over_languages()
    for layer, row, mean in zip(result.layers, result.grid(), means):
        print(f"{layer:>5} " + "".join(f"{value:7.1f}" for value in row) + f"{mean:7.1f}")
    best = max(range(len(means)), key=means.__getitem__)
    print(f"layer {result.layers[best]} (best mean), with 95% bootstrap intervals over sentence pairs:")
    print("language   xx→en   en→xx   mean  interval")
    for language in result.languages:
        cell = result.scores[language][best]
        interval = ("" if cell.average.ci_low is None
                    else f"[{cell.average.ci_low:.1f}, {cell.average.ci_high:.1f}]")
        print(f"{language:<8} {cell.xx_to_en.value:7.1f} {cell.en_to_xx.value:7.1f} {cell.average.value:6.1f}  "
              f"{interval}")
