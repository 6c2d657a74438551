"""The sidebar's settings kept in st.session_state (data root, encoder, device), this browser session's id, the
shared-server mode of dlfa.app.serving, and what follows from them: the data source, the encoder's facts, the
inference device."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from dlfa.app import cache, serving
from dlfa.model.encoders import DEFAULT_ENCODER
from dlfa.paths import cache_dir

# Session-state keys of the sidebar (app.py renders the widgets; pages only read them).
DATA_ROOT_KEY = "dlfa_data_root"
ENCODER_KEY = "dlfa_encoder"
DEVICE_KEY = "dlfa_device"
DEVICE_CHOICES = ("auto", "cpu", "cuda")
DEVICE_LABELS = {"auto": "auto", "cpu": "CPU", "cuda": "CUDA"}
SESSION_KEY = "dlfa_session_id"
OPERATOR_KEY = "dlfa_operator"


@dataclass(frozen=True)
class Settings:
    data_root: str | None
    encoder: str
    device: str


def shared() -> bool:
    """Whether this server is shared (not bound to localhost only, or DLFA_SHARED=1)."""
    from streamlit import config

    return serving.shared_mode(config.get_option("server.address"))


def session_id() -> str:
    """This browser session's id, recorded with the jobs it submits."""
    return st.session_state.setdefault(SESSION_KEY, secrets.token_hex(8))



def default_data_root() -> str:
    return os.environ.get("DLFA_DATA_DIR", "")


def settings() -> Settings:
    """The sidebar settings (defaults when a page runs without app.py, e.g. in AppTest). On a shared server a data
    root or encoder the operator did not allow is replaced by the default."""
    state = st.session_state
    root = (state.get(DATA_ROOT_KEY, default_data_root()) or "").strip()
    encoder = (state.get(ENCODER_KEY, DEFAULT_ENCODER) or "").strip() or DEFAULT_ENCODER
    device = state.get(DEVICE_KEY, "auto")
    if shared():
        root = root if root and str(Path(root).expanduser().resolve()) in serving.allowed_data_roots() else ""
        encoder = encoder if encoder in serving.allowed_encoders() else DEFAULT_ENCODER
    return Settings(data_root=root or None, encoder=encoder, device=device if device in DEVICE_CHOICES else "auto")


def init_settings() -> None:
    """Seed the sidebar's session_state keys once, so that they survive page switches."""
    st.session_state.setdefault(DATA_ROOT_KEY, "" if shared() else default_data_root())
    st.session_state.setdefault(ENCODER_KEY, DEFAULT_ENCODER)
    st.session_state.setdefault(DEVICE_KEY, "auto")
    # Widget state is dropped when a widget is not rendered; re-assigning keeps it across pages.
    for key in (DATA_ROOT_KEY, ENCODER_KEY, DEVICE_KEY):
        st.session_state[key] = st.session_state[key]


def resolve_source(data_root: str | None):
    """The DataSource for a data root (None: $DLFA_DATA_DIR, else the classroom pack, else the hub)."""
    from dlfa.data.registry import DataSource

    return DataSource.resolve(data_root)


def source_key(data_root: str | None) -> cache.SourceKey:
    """The data source of `data_root` as the cached functions take it (see dlfa.app.cache.SourceKey)."""
    return cache.SourceKey.of(resolve_source(data_root))


def source_label(data_root: str | None) -> tuple[str, str]:
    """(kind label, description) of the data source in use: data root / classroom pack / hub."""
    source = resolve_source(data_root)
    kind = {"files": "data root", "pack": "classroom pack", "hub": "Hugging Face hub"}[source.kind]
    return kind, source.describe()


def embedded_built() -> bool:
    return (cache_dir() / "models" / "e5-small" / "config.json").is_file()


def encoder_ready(spec: str) -> bool:
    """False for the embedded encoder before it is built (looking it up would build it, which takes a while)."""
    return not spec.startswith("embedded:") or embedded_built()


def check_encoder(spec: str) -> dict | None:
    """encoder facts, or None when the embedded encoder is not built yet. DlfaError on a bad spec."""
    if not encoder_ready(spec):
        return None
    return cache.encoder_summary(spec, cache.encoder_stamp(spec))


def gpu_info() -> dict:
    """{"available": bool, "count": int, "name": str} (looked up once per process)."""
    return cache.gpu_info()


def inference_device() -> str:
    """Where this app runs a model: the sidebar's device, CPU when CUDA is asked for but absent."""
    device = settings().device
    if device == "cuda" or (device == "auto" and gpu_info()["available"]):
        return "cuda" if gpu_info()["available"] else "cpu"
    return "cpu"
