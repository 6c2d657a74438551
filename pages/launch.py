"""Launch: build a JobSpec in a form; problems appear under their fields before anything starts."""
import streamlit as st

from dlfa.app import serving, ui
from dlfa.errors import ConfigError, DlfaError
from dlfa.model.fusion import AGGREGATIONS, NEEDS_FUSION_LAYER
from dlfa.engine.spec import BACKENDS, DEVICES, JobSpec, parse_int_list

K = "launch_"  # widget key prefix
BACKEND_LABELS = {"local": "local process", "torchrun": "torchrun (several processes / GPUs)", "slurm": "SLURM"}


def form_spec(state) -> tuple[JobSpec | None, dict[str, str]]:
    """The JobSpec the form describes and its problems ({field: message}); parse errors count as problems."""
    problems: dict[str, str] = {}
    parsed = {}
    for field, key, what in (("fusion_layers", "fusion_layers", "fusion layers"), ("seeds", "seeds", "seeds")):
        try:
            parsed[field] = parse_int_list(state.get(K + key, ""), what)
        except ConfigError as exc:
            problems[field] = str(exc)
            parsed[field] = (1,) if field == "seeds" else ()
    steps_mode = state.get(K + "budget") == "steps"
    settings = ui.settings()
    spec = JobSpec(
        task=state.get(K + "task") or "",
        eval_languages=tuple(state.get(K + "languages") or ()),
        encoder=(state.get(K + "encoder") or settings.encoder).strip(),
        aggregations=tuple(state.get(K + "aggregations") or ()),
        fusion_layers=parsed["fusion_layers"] if not problems.get("fusion_layers") else (),
        seeds=parsed["seeds"],
        intermediate_tasks=tuple(state.get(K + "intermediate") or ()),
        data_root=settings.data_root,
        max_train_examples=int(state.get(K + "max_train") or 0) or None,
        max_eval_examples=int(state.get(K + "max_eval") or 0) or None,
        epochs=float(state.get(K + "epochs") or 1.0),
        max_steps=int(state.get(K + "steps") or 0) if steps_mode else None,
        batch_size=int(state.get(K + "batch_size") or 32),
        learning_rate=float(state.get(K + "learning_rate") or 1e-4),
        pooling=state.get(K + "pooling") or "cls",
        patience=int(state.get(K + "patience") or 0) or None,
        max_epochs=float(state.get(K + "epochs") or 1.0) if state.get(K + "patience") and not steps_mode else None,
        probe=bool(state.get(K + "probe")),
        tensorboard=bool(state.get(K + "tensorboard")),
        device=state.get(K + "device") or "auto",
        backend=state.get(K + "backend") or "local",
        num_processes=int(state.get(K + "nproc") or 1),
        name=(state.get(K + "name") or "").strip(),
    )
    if problems.get("fusion_layers") and not any(a in NEEDS_FUSION_LAYER for a in spec.aggregations):
        problems.pop("fusion_layers")
    try:
        found = spec.problems()
    except DlfaError as exc:
        found = {"task": str(exc)}
    return spec, {**found, **problems}


def parse_fusion_layers(text: str) -> tuple[int, ...]:
    """The fusion layers typed in the form; () while they do not parse (the problem is shown under the field)."""
    try:
        return parse_int_list(text, "fusion layers")
    except ConfigError:
        return ()


def on_submit() -> None:
    state = st.session_state
    spec, problems = form_spec(state)
    state[K + "problems"] = problems
    state.pop(K + "submitted", None)
    if problems:
        return
    try:
        job = ui.submit(spec)
    except DlfaError as exc:
        state[K + "problems"] = {"submit": str(exc)}
        return
    state[K + "submitted"] = job.id


def apply_preset() -> None:
    count = st.session_state.get(K + "preset")
    presets = ui.intermediate_presets(ui.settings().data_root, (st.session_state.get(K + "task"),))
    if count is not None and count in presets:
        available = set(st.session_state.get(K + "intermediate_options", []))
        st.session_state[K + "intermediate"] = [t for t in presets[count] if t in available]


def main() -> None:
    st.title("Launch a job")
    st.caption("One form → one JobSpec. Several aggregations, fusion layers or seeds make a sweep; the job runs in "
               "the background and appears on the Jobs page.")
    settings = ui.settings()
    state = st.session_state
    problems: dict = state.get(K + "problems", {})

    tasks, unavailable = ui.target_tasks(settings.data_root)
    source = ui.source_label(settings.data_root)[1]
    if not tasks:
        st.error(f"No task can be trained with {source}: " + "; ".join(f"{n}: {why}" for n, why in unavailable.items()))
        st.info("Build the classroom pack on Home, or give a data root in the sidebar.")
        return
    names = [t.name for t in tasks]
    by_name = {t.name: t for t in tasks}
    if state.get(K + "task") not in names:  # first visit, or a data source that does not serve it
        state[K + "task"] = "udpos" if "udpos" in names else names[0]
    c1, c2 = st.columns(2)
    with c1:
        st.selectbox("Target task", names, key=K + "task",
                     format_func=lambda n: f"{n} — {by_name[n].kind}, {by_name[n].metric}")
        st.caption(by_name[state[K + "task"]].description)
        ui.field_error(problems, "task", "train_language")
        if unavailable:
            with st.expander(f"{len(unavailable)} task(s) not offered with this data source"):
                st.markdown("\n".join(f"- **{name}**: {why}" for name, why in unavailable.items()))
    with c2:
        state.setdefault(K + "encoder", settings.encoder)
        if ui.shared():  # only the operator's encoders
            allowed = serving.allowed_encoders()
            if state[K + "encoder"] not in allowed:
                state[K + "encoder"] = settings.encoder
            st.selectbox("Encoder", allowed, key=K + "encoder")
        else:
            st.text_input("Encoder", key=K + "encoder", help="embedded:e5-small, a hub id or a local folder")
        ui.field_error(problems, "encoder")

    task = state[K + "task"]
    try:
        options = ui.language_options(task, settings.data_root)
    except DlfaError as exc:
        options = []
        st.error(str(exc))
    if K + "languages" in state:
        state[K + "languages"] = [c for c in state[K + "languages"] if c in options]
    else:
        state[K + "languages"] = [c for c in ("de", "es", "zh") if c in options] or options[:3]
    st.multiselect("Target languages (zero-shot)", options, key=K + "languages", format_func=ui.language_label,
                   help="Only languages with test data in the current data source; grouped by language family.")
    ui.field_error(problems, "eval_languages")
    broken = ui.broken_languages(task, settings.data_root) if options else {}
    if broken:
        st.warning(f"{len(broken)} language(s) of {task} disabled, their files cannot be read:\n"
                   + "\n".join(f"- **{ui.language_label(code)}**: {why}" for code, why in broken.items()))

    c1, c2 = st.columns(2)
    with c1:
        state.setdefault(K + "aggregations", ["last", "dlfa"])
        st.multiselect("Aggregation(s)", list(AGGREGATIONS), key=K + "aggregations",
                       help="last: the usual last layer; dlfa: AIF fusion of the last and one lower layer; mean, "
                            "concat: simple fusions; scalar-mix: learned mix of all layers")
        ui.field_error(problems, "aggregations")
    with c2:
        state.setdefault(K + "fusion_layers", "6")
        st.text_input("Fusion layer(s)", key=K + "fusion_layers",
                      help="e.g. 6, or 3,6,9, or 0-11 (0 = embeddings); several make a sweep")
        ui.field_error(problems, "fusion_layers")
    if by_name[state[K + "task"]].kind != "token":
        st.radio("Sentence pooling", ["cls", "mean"], key=K + "pooling", horizontal=True,
                 format_func={"cls": "cls: the fused first token (as the paper)",
                              "mean": "mean over the real tokens"}.get)
        fuses_layer_0 = 0 in parse_fusion_layers(state.get(K + "fusion_layers", ""))
        if state.get(K + "pooling", "cls") == "cls" and fuses_layer_0 and \
                any(a in NEEDS_FUSION_LAYER for a in state.get(K + "aggregations") or ()):
            st.warning("cls pooling with fusion layer 0 fuses a constant: the layer-0 vector at the first position "
                       "is the embedding of the same token for every input. Choose mean pooling or another layer.",
                       icon=":material/warning:")

    intermediate = ui.intermediate_tasks(settings.data_root)
    state[K + "intermediate_options"] = intermediate
    presets = ui.intermediate_presets(settings.data_root, (task,))
    c1, c2 = st.columns([1, 3])
    with c1:
        st.radio("Preset", sorted(presets), key=K + "preset", index=None, horizontal=True, on_change=apply_preset,
                 format_func=lambda n: f"{n} tasks", help="The 0 / 3 / 9 intermediate-task presets of the study")
        for count, why in ui.unavailable_presets(settings.data_root, (task,)).items():
            st.caption(f"{count} tasks: unavailable, {why}")
    with c2:
        if K + "intermediate" in state:
            state[K + "intermediate"] = [t for t in state[K + "intermediate"] if t in intermediate]
        st.multiselect("Intermediate tasks (English, trained before the target task)", intermediate,
                       key=K + "intermediate")
        ui.field_error(problems, "intermediate_tasks")

    st.markdown("**Budget**")
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        st.radio("Budget in", ["epochs", "steps"], key=K + "budget", horizontal=True)
        if state.get(K + "budget") == "steps":
            st.number_input("Steps per stage", min_value=1, value=200, step=50, key=K + "steps")
            ui.field_error(problems, "max_steps")
        else:
            st.number_input("Epochs", min_value=0.1, value=1.0, step=0.5, key=K + "epochs")
            ui.field_error(problems, "epochs")
    with c2:
        st.number_input("Batch size", min_value=1, value=32, step=8, key=K + "batch_size")
        ui.field_error(problems, "batch_size")
    with c3:
        st.number_input("Learning rate", min_value=1e-6, max_value=0.5, value=1e-4, format="%.0e", step=1e-5,
                        key=K + "learning_rate")
        ui.field_error(problems, "learning_rate")
        st.number_input("Early-stopping patience (0 = off)", min_value=0, value=0, key=K + "patience",
                        help="Stop the target task once this many English dev evaluations (one per epoch) bring "
                             "no improvement; the budget above is then the cap. The best dev state is evaluated.")
        ui.field_error(problems, "patience", "max_epochs")
    with c4:
        st.text_input("Seeds", value="1", key=K + "seeds", help="e.g. 1 or 1,2,3: equal seeds make runs comparable")
        ui.field_error(problems, "seeds")
    c1, c2, c3 = st.columns(3)
    with c1:
        st.number_input("Max train examples (0 = all)", min_value=0, value=2000, step=500, key=K + "max_train")
        ui.field_error(problems, "max_train_examples")
    with c2:
        st.number_input("Max eval examples per language (0 = all)", min_value=0, value=500, step=100,
                        key=K + "max_eval")
        ui.field_error(problems, "max_eval_examples")
    with c3:
        st.checkbox("Probe mode (freeze the encoder; train fusion + head on cached features)", value=True,
                    key=K + "probe")

    st.markdown("**Where it runs**")
    c1, c2, c3, c4 = st.columns(4)
    gpu = ui.gpu_info()
    with c1:
        state.setdefault(K + "device", settings.device)
        st.selectbox("Device", list(DEVICES), key=K + "device",
                     format_func=lambda d: ui.DEVICE_LABELS[d] + ("" if d != "cuda" or gpu["available"] else " (none)"))
        ui.field_error(problems, "device")
    with c2:
        st.selectbox("Backend", list(BACKENDS), key=K + "backend", format_func=BACKEND_LABELS.get)
        ui.field_error(problems, "backend")
    with c3:
        st.number_input("Processes (torchrun / SLURM tasks)", min_value=1, value=1, key=K + "nproc")
        ui.field_error(problems, "num_processes")
    with c4:
        st.text_input("Name (optional)", key=K + "name")
    st.checkbox("Track in TensorBoard (losses, dev scores and results; open with `tensorboard --logdir cache/runs`)",
                key=K + "tensorboard")

    shown = {"task", "train_language", "encoder", "eval_languages", "aggregations", "fusion_layers",
             "intermediate_tasks", "max_steps", "epochs", "batch_size", "learning_rate", "seeds", "patience",
             "max_epochs",
             "max_train_examples", "max_eval_examples", "device", "backend", "num_processes"}
    other = {k: v for k, v in problems.items() if k not in shown}
    for name, message in other.items():
        st.error(f"{name}: {message}" if name != "submit" else message)

    st.button("Submit job", type="primary", icon=":material/rocket_launch:", key=K + "submit", on_click=on_submit)
    if problems:
        st.warning(f"Nothing was submitted: fix the {len(problems)} problem(s) shown above.")
    job_id = state.get(K + "submitted")
    if job_id:
        st.success(f"Submitted job `{job_id}`.", icon=":material/check_circle:")
        ui.select_job(job_id)
        ui.page_link("pages/jobs.py", "Follow it on the Jobs page", icon=":material/list_alt:")


ui.run_page(main)
