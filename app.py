"""DLFA Explorer: `streamlit run app.py`. One navigation over pages/, one sidebar (data, encoder, device)
whose settings live in st.session_state so that they survive page switches."""
import streamlit as st

from dlfa.app import session, widgets
from dlfa.errors import DlfaError

st.set_page_config(page_title="DLFA Explorer", page_icon=":material/layers:", layout="wide")

INSPECTION_PAGES = {  # the per-example explorer, the embedding projector and the attention view
    "pages/examples.py": ("Examples", ":material/table_rows:"),
    "pages/projector.py": ("Projector", ":material/scatter_plot:"),
    "pages/attention.py": ("Attention", ":material/visibility:"),
}
navigation = st.navigation([st.Page(path, title=title, icon=icon, default=path == "pages/home.py")
                            for path, (title, icon) in {**widgets.PAGES, **INSPECTION_PAGES}.items()])

session.init_settings()


def shared_source_choices() -> None:
    """On a shared server: data roots and encoders only from the operator's lists (dlfa.app.serving)."""
    from dlfa.app import serving

    st.caption("Shared server: data and encoders from the operator's lists, uploads only, a few jobs per session.")
    for key, options, label in ((session.DATA_ROOT_KEY, serving.allowed_data_roots(), "Data"),
                                (session.ENCODER_KEY, serving.allowed_encoders(), "Encoder")):
        if st.session_state.get(key) not in options:
            st.session_state[key] = options[0]
        st.selectbox(label, options, key=key, format_func=lambda o: o or "the server's data source")


def sidebar() -> None:
    with st.sidebar:
        st.subheader("Settings")
        if session.shared():
            shared_source_choices()
        else:
            st.text_input("Data root", key=session.DATA_ROOT_KEY, placeholder="empty: classroom pack, else the hub",
                          help="A folder with the labeled data (default: $DLFA_DATA_DIR). Empty: the offline "
                               "classroom pack if it is built, else the Hugging Face hub.")
        try:
            kind, where = session.source_label(session.settings().data_root)
            st.caption(f"Data source in use: **{kind}** — {where}")
        except DlfaError as exc:  # an unreadable data root
            st.error(str(exc))
        if not session.shared():
            st.text_input("Encoder", key=session.ENCODER_KEY,
                          help="embedded:e5-small (offline), a Hugging Face hub id such as "
                               "bert-base-multilingual-cased, or a local model folder")
        try:
            info = session.check_encoder(session.settings().encoder)
            if info is None:
                st.warning("The embedded encoder is not built yet: build it on Home.")
            else:
                st.caption(f"{info['model_type']}, {info['num_layers']} layers, hidden {info['hidden_size']}")
        except DlfaError as exc:  # a bad encoder spec: a readable message
            st.error(str(exc))
        gpu = session.gpu_info()
        st.radio("Device", session.DEVICE_CHOICES, key=session.DEVICE_KEY, horizontal=True,
                 format_func=lambda d: session.DEVICE_LABELS[d] if d != "cuda" or gpu["available"] else "CUDA (none)",
                 help="Where jobs train and where this app runs inference (auto: CUDA when available)")
        st.caption(f"GPU: {gpu['name']} ×{gpu['count']}" if gpu["available"] else "GPU: none found (CPU only)")
        if session.settings().device == "cuda" and not gpu["available"]:
            st.error("CUDA is selected but torch sees no GPU: jobs would fail; choose auto or CPU.")


sidebar()
navigation.run()
