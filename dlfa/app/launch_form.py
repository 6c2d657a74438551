"""The Launch form as one table: FIELDS names each field's widget, label, help, default, the JobSpec fields whose
problems show under it, and when it is shown (task kinds, budget mode); ROWS lays the fields out. `render` draws
the form from the table, `form_spec` reads it back into a JobSpec with its problems ({field: message})."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, get_args

import streamlit as st

from dlfa.app import background, catalog, serving
from dlfa.app.guard import field_error
from dlfa.app.session import DEVICE_LABELS, Settings, gpu_info, settings, shared
from dlfa.data.base import TaskKind
from dlfa.engine.spec import BACKENDS, DEVICES, JobSpec, parse_int_list
from dlfa.errors import ConfigError, DlfaError
from dlfa.model.fusion import AGGREGATIONS, NEEDS_FUSION_LAYER

K = "launch_"  # widget key prefix
BACKEND_LABELS = {"local": "local process", "torchrun": "torchrun (several processes / GPUs)", "slurm": "SLURM"}
POOLING_LABELS = {"cls": "cls: the fused first token (as the paper)", "mean": "mean over the real tokens"}
SENTENCE_KINDS = tuple(kind for kind in get_args(TaskKind) if kind not in ("token", "qa"))  # one vector per example
PROBE_KINDS = tuple(kind for kind in get_args(TaskKind) if kind != "qa")  # a span head is fine-tuned, never probed
KIND_DEFAULTS = {"qa": {"max_length": 256}}  # fields whose default depends on the task kind (set when it is chosen)
CONSTANT_FUSION = ("cls pooling with fusion layer 0 fuses a constant: the layer-0 vector at the first position is "
                   "the embedding of the same token for every input. Choose mean pooling or another layer.")


@dataclass
class Context:
    """What the form's options and notes depend on, looked up once per run of the page."""

    settings: Settings
    tasks: dict  # name -> TaskInfo of the tasks the data source can train
    unavailable: dict[str, str]  # other task -> why not
    options: dict[str, list] = field(default_factory=dict)  # field key -> its choices (computed ones)
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def task(self):
        return self.tasks[st.session_state[K + "task"]]


@dataclass(frozen=True)
class Field:
    key: str  # session_state key without the K prefix
    widget: str  # "select", "multiselect", "radio", "text", "number" or "checkbox"
    label: str
    row: str  # a name of ROWS
    column: int = 0
    help: str | None = None
    problems: tuple[str, ...] = ()  # JobSpec fields whose problems show under this widget
    kinds: tuple[str, ...] | None = None  # task kinds that show it (None: every kind)
    budget: str | None = None  # "epochs" or "steps": shown in that budget mode only
    options: tuple | None = None  # fixed choices; None: Context.options[key]
    format: Callable[[Context], Callable] | None = None  # the format_func, given the context
    args: dict[str, Any] = field(default_factory=dict)  # passed to the widget (value, min_value, step, ...)
    initial: Any = None  # put in session_state on the first visit (for widgets given no `value`)
    note: Callable[[Context], None] | None = None  # drawn right after the widget (captions, warnings)

    def shown(self, ctx: Context) -> bool:
        if self.kinds is not None and ctx.task.kind not in self.kinds:
            return False
        return self.budget is None or st.session_state.get(K + "budget", "epochs") == self.budget


# ----------------------------------------------------------------------------------------------------
# Notes drawn under some fields


def task_note(ctx: Context) -> None:
    st.caption(ctx.task.description)
    if ctx.unavailable:
        with st.expander(f"{len(ctx.unavailable)} task(s) not offered with this data source"):
            st.markdown("\n".join(f"- **{name}**: {why}" for name, why in ctx.unavailable.items()))


def languages_note(ctx: Context) -> None:
    task = ctx.task.name
    broken = catalog.broken_languages(task, ctx.settings.data_root) if ctx.options["languages"] else {}
    if broken:
        st.warning(f"{len(broken)} language(s) of {task} disabled, their files cannot be read:\n"
                   + "\n".join(f"- **{catalog.language_label(code)}**: {why}" for code, why in broken.items()))


def parse_fusion_layers(text: str) -> tuple[int, ...]:
    """The fusion layers typed in the form; () while they do not parse (the problem is shown under the field)."""
    try:
        return parse_int_list(text, "fusion layers")
    except ConfigError:
        return ()


def pooling_note(ctx: Context) -> None:
    state = st.session_state
    fuses_layer_0 = 0 in parse_fusion_layers(state.get(K + "fusion_layers", ""))
    if state.get(K + "pooling", "cls") == "cls" and fuses_layer_0 and \
            any(a in NEEDS_FUSION_LAYER for a in state.get(K + "aggregations") or ()):
        st.warning(CONSTANT_FUSION, icon=":material/warning:")


def preset_note(ctx: Context) -> None:
    for count, why in catalog.unavailable_presets(ctx.settings.data_root, (ctx.task.name,)).items():
        st.caption(f"{count} tasks: unavailable, {why}")


def apply_preset() -> None:
    """Fill the intermediate tasks with the chosen preset's (those the data source offers)."""
    state = st.session_state
    count = state.get(K + "preset")
    presets = catalog.intermediate_presets(settings().data_root, (state.get(K + "task"),))
    if count is not None and count in presets:
        available = set(state.get(K + "intermediate_options", []))
        state[K + "intermediate"] = [t for t in presets[count] if t in available]


def kind_defaults(task: str) -> dict[str, Any]:
    """The form's defaults for a task's kind: KIND_DEFAULTS, else the JobSpec's defaults."""
    return {"max_length": JobSpec.max_length, **KIND_DEFAULTS.get(catalog.task_kind(task), {})}


def apply_task_defaults() -> None:
    """A newly chosen task brings its kind's defaults (question answering: longer inputs for its contexts)."""
    state = st.session_state
    for key, default in kind_defaults(state[K + "task"]).items():
        state[K + key] = default


def device_format(ctx: Context) -> Callable:
    gpu = gpu_info()
    return lambda d: DEVICE_LABELS[d] + ("" if d != "cuda" or gpu["available"] else " (none)")


# ----------------------------------------------------------------------------------------------------
# The table

ROWS = {  # name -> (heading, column widths)
    "task": (None, [1, 1]),
    "languages": (None, [1]),
    "aggregation": (None, [1, 1]),
    "pooling": (None, [1]),
    "intermediate": (None, [1, 3]),
    "budget": ("**Budget**", [1, 1, 1, 1]),
    "limits": (None, [1, 1, 1, 1]),
    "where": ("**Where it runs**", [1, 1, 1, 1]),
    "tracking": (None, [1, 1]),
}

FIELDS = (
    Field("task", "select", "Target task", "task", problems=("task", "train_language"),
          format=lambda ctx: lambda n: f"{n} — {ctx.tasks[n].kind}, {ctx.tasks[n].metric}", note=task_note,
          args={"on_change": apply_task_defaults}),
    Field("encoder", "text", "Encoder", "task", 1, help="embedded:e5-small, a hub id or a local folder",
          problems=("encoder",)),
    Field("languages", "multiselect", "Target languages (zero-shot)", "languages", problems=("eval_languages",),
          help="Only languages with test data in the current data source; grouped by language family.",
          format=lambda ctx: catalog.language_label, note=languages_note),
    Field("aggregations", "multiselect", "Aggregation(s)", "aggregation", options=tuple(AGGREGATIONS),
          problems=("aggregations",), initial=["last", "dlfa"],
          help="last: the usual last layer; dlfa: AIF fusion of the last and one lower layer; mean, concat: simple "
               "fusions; scalar-mix: learned mix of all layers"),
    Field("fusion_layers", "text", "Fusion layer(s)", "aggregation", 1, problems=("fusion_layers",),
          help="e.g. 6, or 3,6,9, or 0-11 (0 = embeddings); several make a sweep", initial="6"),
    Field("pooling", "radio", "Sentence pooling", "pooling", kinds=SENTENCE_KINDS, options=("cls", "mean"),
          format=lambda ctx: POOLING_LABELS.get, args={"horizontal": True}, note=pooling_note),
    Field("preset", "radio", "Preset", "intermediate", help="The 0 / 3 / 9 intermediate-task presets of the study",
          format=lambda ctx: lambda n: f"{n} tasks",
          args={"index": None, "horizontal": True, "on_change": apply_preset}, note=preset_note),
    Field("intermediate", "multiselect", "Intermediate tasks (English, trained before the target task)",
          "intermediate", 1, problems=("intermediate_tasks",)),
    Field("budget", "radio", "Budget in", "budget", options=("epochs", "steps"), args={"horizontal": True}),
    Field("steps", "number", "Steps per stage", "budget", budget="steps", problems=("max_steps",),
          args={"min_value": 1, "value": 200, "step": 50}),
    Field("epochs", "number", "Epochs", "budget", budget="epochs", problems=("epochs",),
          args={"min_value": 0.1, "value": 1.0, "step": 0.5}),
    Field("batch_size", "number", "Batch size", "budget", 1, problems=("batch_size",),
          args={"min_value": 1, "value": 32, "step": 8}),
    Field("learning_rate", "number", "Learning rate", "budget", 2, problems=("learning_rate",),
          args={"min_value": 1e-6, "max_value": 0.5, "value": 1e-4, "format": "%.0e", "step": 1e-5}),
    Field("patience", "number", "Early-stopping patience (0 = off)", "budget", 2, problems=("patience", "max_epochs"),
          help="Stop the target task once this many English dev evaluations (one per epoch) bring no improvement; "
               "the budget above is then the cap. The best dev state is evaluated.", args={"min_value": 0, "value": 0}),
    Field("seeds", "text", "Seeds", "budget", 3, problems=("seeds",), args={"value": "1"},
          help="e.g. 1 or 1,2,3: equal seeds make runs comparable"),
    Field("max_train", "number", "Max train examples (0 = all)", "limits", problems=("max_train_examples",),
          args={"min_value": 0, "value": 2000, "step": 500}),
    Field("max_eval", "number", "Max eval examples per language (0 = all)", "limits", 1,
          problems=("max_eval_examples",), args={"min_value": 0, "value": 500, "step": 100}),
    Field("probe", "checkbox", "Probe mode (freeze the encoder; train fusion + head on cached features)", "limits", 2,
          kinds=PROBE_KINDS, args={"value": True}),
    Field("max_length", "number", "Max length (tokens)", "limits", 3, problems=("max_length",),
          help="Longer inputs are cut; question answering cuts a long context into overlapping windows of this "
               "length (256 suits XQuAD and MLQA). Choosing a task sets its kind's default.",
          args={"min_value": 8, "max_value": 512, "step": 32}),
    Field("device", "select", "Device", "where", options=tuple(DEVICES), problems=("device",), format=device_format),
    Field("backend", "select", "Backend", "where", 1, options=tuple(BACKENDS), problems=("backend",),
          format=lambda ctx: BACKEND_LABELS.get),
    Field("nproc", "number", "Processes (torchrun / SLURM tasks)", "where", 2, problems=("num_processes",),
          args={"min_value": 1, "value": 1}),
    Field("name", "text", "Name (optional)", "where", 3),
    Field("tensorboard", "checkbox", "Track in TensorBoard (losses, dev scores and results; open with "
          "`tensorboard --logdir cache/runs`)", "tracking"),
    Field("compile_model", "checkbox", "Compile the encoder (torch.compile; meant for GPUs)", "tracking", 1,
          help="On a GPU a step otherwise launches a few thousand small kernels and the GPU waits for the CPU "
               "that launches them; compiled, they fuse into fewer. The first steps and the first evaluation "
               "compile (a minute or more); on a CPU it gained little in our benchmarks (README)."),
)
FIELD = {f.key: f for f in FIELDS}
WIDGETS = {"select": st.selectbox, "multiselect": st.multiselect, "radio": st.radio, "text": st.text_input,
           "number": st.number_input, "checkbox": st.checkbox}


# ----------------------------------------------------------------------------------------------------
# Drawing the form


def context(current: Settings, problems: dict[str, str]) -> Context:
    """The choices of this run of the page (fixing widget state that no longer fits them); without `tasks` when
    the data source can train none (`unavailable` says why)."""
    state = st.session_state
    tasks, unavailable = catalog.target_tasks(current.data_root)
    ctx = Context(current, {t.name: t for t in tasks}, unavailable, problems=problems)
    if not tasks:
        return ctx
    names = list(ctx.tasks)
    if state.get(K + "task") not in names:  # first visit, or a data source that does not serve it
        state[K + "task"] = "udpos" if "udpos" in names else names[0]
    ctx.options["task"] = names
    ctx.options["languages"] = language_choices(ctx)
    ctx.options["intermediate"] = state[K + "intermediate_options"] = catalog.intermediate_tasks(current.data_root)
    ctx.options["preset"] = sorted(catalog.intermediate_presets(current.data_root, (ctx.task.name,)))
    state.setdefault(K + "encoder", current.encoder)
    if shared():  # only the operator's encoders
        ctx.options["encoder"] = serving.allowed_encoders()
        if state[K + "encoder"] not in ctx.options["encoder"]:
            state[K + "encoder"] = current.encoder
    state.setdefault(K + "device", current.device)
    for key, default in kind_defaults(ctx.task.name).items():
        state.setdefault(K + key, default)
    for f in FIELDS:
        if f.initial is not None:
            state.setdefault(K + f.key, f.initial)
        if f.widget == "multiselect" and K + f.key in state:  # keep only choices still offered
            choices = f.options if f.options is not None else ctx.options[f.key]
            state[K + f.key] = [c for c in state[K + f.key] if c in choices]
    return ctx


def language_choices(ctx: Context) -> list[str]:
    """The task's target languages, preselecting three on the first visit; [] (with the error) when unreadable."""
    state = st.session_state
    try:
        options = catalog.language_options(ctx.task.name, ctx.settings.data_root)
    except DlfaError as exc:
        st.error(str(exc))
        return []
    if K + "languages" not in state:
        state[K + "languages"] = [c for c in ("de", "es", "zh") if c in options] or options[:3]
    return options


def draw(f: Field, ctx: Context) -> None:
    """One field's widget, its problems and its note."""
    kind = "select" if f.key == "encoder" and "encoder" in ctx.options else f.widget
    kwargs = dict(f.args)
    if f.help and kind == f.widget:  # the operator's list of encoders needs no hint about folders
        kwargs["help"] = f.help
    if f.format:
        kwargs["format_func"] = f.format(ctx)
    choices = f.options if f.options is not None else ctx.options.get(f.key)
    if kind in ("select", "multiselect", "radio"):
        WIDGETS[kind](f.label, list(choices), key=K + f.key, **kwargs)
    else:
        WIDGETS[kind](f.label, key=K + f.key, **kwargs)
    field_error(ctx.problems, *f.problems)
    if f.note:
        f.note(ctx)


def render(ctx: Context) -> set[str]:
    """Draw every field shown for the chosen task and budget, row by row; returns the JobSpec fields whose
    problems appear under a widget."""
    under_widgets = set()
    for row, (heading, widths) in ROWS.items():
        fields = [f for f in FIELDS if f.row == row and f.shown(ctx)]
        if not fields:
            continue
        if heading:
            st.markdown(heading)
        columns = st.columns(widths) if len(widths) > 1 else [st.container()]
        for f in fields:
            with columns[f.column]:
                draw(f, ctx)
            under_widgets.update(f.problems)
    return under_widgets


# ----------------------------------------------------------------------------------------------------
# Reading the form back


def value(state, key: str):
    """A field's value in session_state, else the default its widget starts with."""
    found = state.get(K + key)
    return found if found is not None else FIELD[key].args.get("value", FIELD[key].initial)


def form_spec(state) -> tuple[JobSpec, dict[str, str]]:
    """The JobSpec the form describes and its problems ({field: message}); parse errors count as problems."""
    problems: dict[str, str] = {}
    parsed = {}
    for key, what in (("fusion_layers", "fusion layers"), ("seeds", "seeds")):
        try:
            parsed[key] = parse_int_list(state.get(K + key, ""), what)
        except ConfigError as exc:
            problems[key] = str(exc)
            parsed[key] = (1,) if key == "seeds" else ()
    steps_mode = state.get(K + "budget") == "steps"
    epochs = float(value(state, "epochs") or 1.0)
    task = state.get(K + "task") or ""
    kind = catalog.task_kind(task) if task else None
    spec = JobSpec(
        task=task,
        eval_languages=tuple(state.get(K + "languages") or ()),
        encoder=(state.get(K + "encoder") or settings().encoder).strip(),
        aggregations=tuple(state.get(K + "aggregations") or ()),
        fusion_layers=parsed["fusion_layers"],
        seeds=parsed["seeds"],
        intermediate_tasks=tuple(state.get(K + "intermediate") or ()),
        data_root=settings().data_root,
        max_train_examples=int(state.get(K + "max_train") or 0) or None,
        max_eval_examples=int(state.get(K + "max_eval") or 0) or None,
        epochs=epochs,
        max_steps=int(value(state, "steps") or 0) if steps_mode else None,
        batch_size=int(value(state, "batch_size") or 32),
        learning_rate=float(value(state, "learning_rate") or 1e-4),
        pooling=state.get(K + "pooling") or "cls",
        patience=int(state.get(K + "patience") or 0) or None,
        max_epochs=epochs if state.get(K + "patience") and not steps_mode else None,
        probe=bool(state.get(K + "probe")) and kind in PROBE_KINDS,
        max_length=int(state.get(K + "max_length") or JobSpec.max_length),
        tensorboard=bool(state.get(K + "tensorboard")),
        compile_model=bool(state.get(K + "compile_model")),
        device=state.get(K + "device") or "auto",
        backend=state.get(K + "backend") or "local",
        num_processes=int(value(state, "nproc") or 1),
        name=(state.get(K + "name") or "").strip(),
    )
    if problems.get("fusion_layers") and not any(a in NEEDS_FUSION_LAYER for a in spec.aggregations):
        problems.pop("fusion_layers")
    try:
        found = spec.problems()
    except DlfaError as exc:
        found = {"task": str(exc)}
    return spec, {**found, **problems}


def on_submit() -> None:
    """The Submit button: problems stay in session_state for the next run to show; a clean spec is submitted."""
    state = st.session_state
    spec, problems = form_spec(state)
    state[K + "problems"] = problems
    state.pop(K + "submitted", None)
    if problems:
        return
    try:
        job = background.submit(spec)
    except DlfaError as exc:
        state[K + "problems"] = {"submit": str(exc)}
        return
    state[K + "submitted"] = job.id
