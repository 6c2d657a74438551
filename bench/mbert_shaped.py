"""A randomly initialised encoder of mBERT-base's shape, as a local Hugging Face folder, for timing the GPU path
where the real mBERT cannot be downloaded (it costs the same FLOPs and memory as the real one).

    python bench/mbert_shaped.py cache/mbert-shaped    # here: config and tokenizer (weights too with --weights)
    python bench/mbert_shaped.py cache/mbert-shaped --weights   # where it is timed: random weights (seed 0)

The config is bert-base-multilingual-cased's (12 layers, width 768, 12 heads, feed-forward 3072, 119,547 word
pieces). Its WordPiece vocabulary is made from the embedded encoder's SentencePiece pieces, best-scored first (a
piece that starts a word keeps its text, any other gets '##'; a single character gets both forms, as BERT's
pre-tokenizer splits punctuation off), so that sentences split into a realistic number of tokens; the tokenizer
files are about 4 MB and travel where the embedded weights cannot."""
import argparse
import json
from pathlib import Path

MBERT_BASE = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 119547, "hidden_size": 768,
              "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512,
              "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0}
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_vocabulary(sentencepiece_tokenizer_json: Path, size: int) -> list[str]:
    """`size` WordPiece entries: the special tokens, then the SentencePiece pieces in score order, converted."""
    pieces = json.loads(sentencepiece_tokenizer_json.read_text())["model"]["vocab"]
    vocabulary = dict.fromkeys(SPECIAL)
    for piece, _score in sorted(pieces, key=lambda entry: -entry[1]):
        if len(vocabulary) >= size:
            break
        if piece.startswith("<") and piece.endswith(">") or piece == "▁":
            continue
        text = piece.removeprefix("▁")
        forms = (text, f"##{text}") if len(text) == 1 else (text if piece.startswith("▁") else f"##{text}",)
        vocabulary.update(dict.fromkeys(form for form in forms if form not in vocabulary))
    if len(vocabulary) < size:
        raise ValueError(f"{sentencepiece_tokenizer_json} has too few pieces for {size} WordPiece entries")
    return list(vocabulary)[:size]


def write_tokenizer(folder: Path) -> None:
    from tokenizers.implementations import BertWordPieceTokenizer
    from transformers import PreTrainedTokenizerFast

    from dlfa.model.encoders import encoder_path

    vocab_file = folder / "vocab.txt"
    source = Path(encoder_path("embedded:e5-small")) / "tokenizer.json"
    vocab_file.write_text("\n".join(wordpiece_vocabulary(source, MBERT_BASE["vocab_size"])) + "\n")
    wordpiece = BertWordPieceTokenizer(str(vocab_file), lowercase=False, strip_accents=False)
    PreTrainedTokenizerFast(tokenizer_object=wordpiece._tokenizer, model_max_length=512, pad_token="[PAD]",
                            unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                            mask_token="[MASK]").save_pretrained(folder)


def write_random_weights(folder: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig(**MBERT_BASE), add_pooling_layer=False).save_pretrained(folder)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path)
    p.add_argument("--weights", action="store_true", help="also write random weights (about 700 MB in fp32)")
    args = p.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    (args.folder / "config.json").write_text(json.dumps(MBERT_BASE, indent=2) + "\n")
    if not (args.folder / "tokenizer.json").is_file():
        write_tokenizer(args.folder)
    if args.weights and not (args.folder / "model.safetensors").is_file():
        write_random_weights(args.folder)
    print(f"{args.folder}: mBERT-base-shaped encoder, "
          + ("with random weights" if (args.folder / "model.safetensors").is_file() else "config and tokenizer only"))


if __name__ == "__main__":
    main()
