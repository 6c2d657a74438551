"""Intermediate tasks: does the NUMBER of English intermediate tasks change zero-shot transfer when every arm
spends the same intermediate budget? Design a study (dlfa.reproduction.study_design) and launch it as ordinary
jobs, the arms first; then, for a study found among the finished jobs (or the repository's recorded study,
opened in place), see how far it has come, the budget each arm spent, whether each intermediate task learned, per
target and aggregation the arms' English dev, target mean, transfer gap and ratio with paired changes against 0
tasks and the control, each arm's Tatoeba retrieval, and the answer."""
import json
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from dlfa.data.tatoeba import available_tatoeba_languages
from dlfa.app import background, catalog, guard, runs, session, widgets
from dlfa.engine.spec import JobSpec, parse_int_list
from dlfa.errors import ConfigError
from dlfa.io import write_json
from dlfa.paths import cache_subdir
from dlfa.reproduction import report_study, study
from dlfa.reproduction.plan import STEP_SECONDS, study_hours
from dlfa.reproduction.study_design import (DEFAULT_COUNTS, DEFAULT_INTERMEDIATE_STEPS,
                                            DEFAULT_RETRIEVAL_LANGUAGES, DESIGN_FILE, MODES, RETRIEVAL_TASK,
                                            SAMPLINGS, StudyDesign, StudyTarget, drawn_subsets, named_subsets,
                                            target_for)

K = "is_"
PLACEHOLDER = ""  # the preview's job folders: their keys, e.g. study/arm-3


def target_section(data_root: str | None) -> list[StudyTarget]:
    runnable, _ = catalog.target_tasks(data_root)
    names = [t.name for t in runnable if not t.intermediate and t.name != RETRIEVAL_TASK]
    if K + "targets" not in st.session_state:
        st.session_state[K + "targets"] = [t for t in ("udpos", "xnli") if t in names] or names[:1]
    chosen = st.multiselect("Target tasks", names, key=K + "targets")
    c1, c2, c3 = st.columns(3)
    layer = c1.number_input("DLFA fusion layer", 0, 48, 6, key=K + "layer")
    epochs = c2.number_input("Target epochs (the same in every arm)", 0.1, 100.0, 2.0, key=K + "epochs")
    max_train = c3.number_input("Max target training examples", 0, 1_000_000, 4000, step=500, key=K + "max_train",
                                help="0: all")
    targets = []
    for task in chosen:
        options = catalog.language_options(task, data_root)
        key = f"{K}languages_{task}"
        if key not in st.session_state:
            st.session_state[key] = [c for c in ("de", "zh", "sw") if c in options] or options[:3]
        languages = st.multiselect(f"{task}: target languages", options, key=key, format_func=catalog.language_label)
        targets.append(target_for(task, tuple(languages), fusion_layer=int(layer),
                                  max_train_examples=int(max_train) or None, max_eval_examples=500,
                                  epochs=float(epochs)))
    return targets


def arms_section(data_root: str | None, targets: list[StudyTarget]) -> tuple[tuple, str, int | None]:
    """(subsets, rule, draw seed) from the form."""
    available = [t for t in catalog.intermediate_tasks(data_root) if t not in {x.task for x in targets}]
    c1, c2, c3 = st.columns([2, 1, 1])
    default = ",".join(str(c) for c in DEFAULT_COUNTS if c <= len(available))  # what this source can serve
    counts_text = c1.text_input("Arms: numbers of intermediate tasks", default, key=K + "counts")
    rule = c2.radio("Task subsets", ("named", "drawn"), key=K + "rule", horizontal=True,
                    help="named: the first n of the list below, in its order; drawn: a seeded random order of it")
    draw_seed = int(c3.number_input("Draw seed", 0, 2**31 - 1, 1, key=K + "draw_seed"))
    if K + "pool" not in st.session_state:
        st.session_state[K + "pool"] = available
    st.session_state[K + "pool"] = [t for t in st.session_state[K + "pool"] if t in available]
    pool = st.multiselect("Intermediate tasks (in order of preference)", available, key=K + "pool")
    counts = parse_int_list(counts_text, "arms")
    subsets = drawn_subsets(counts, pool, draw_seed) if rule == "drawn" else named_subsets(counts, pool)
    return subsets, rule, draw_seed if rule == "drawn" else None


def design_form() -> StudyDesign:
    settings = session.settings()
    targets = target_section(settings.data_root)
    subsets, rule, draw_seed = arms_section(settings.data_root, targets)
    c1, c2, c3, c4 = st.columns(4)
    steps = c1.number_input("Intermediate budget (steps, every arm)", 1, 10_000_000, DEFAULT_INTERMEDIATE_STEPS,
                            key=K + "steps")
    mode = c2.selectbox("Mode", MODES, key=K + "mode")
    sampling = c3.selectbox("Mixture sampling", SAMPLINGS, index=1, key=K + "sampling", disabled=mode != "mixture")
    temperature = c4.number_input("Temperature T", 0.1, 100.0, 2.0, key=K + "temperature",
                                  disabled=mode != "mixture" or sampling != "temperature")
    c1, c2, c3 = st.columns([1, 1, 2])
    control = c1.checkbox("Control arm", True, key=K + "control",
                          help="the same budget spent on the target task itself, so 'more tasks' is never 'more steps'")
    seeds = parse_int_list(c2.text_input("Seeds (≥ 3)", "1,2,3", key=K + "seeds"), "seeds")
    options = available_tatoeba_languages(session.resolve_source(settings.data_root))
    if K + "tatoeba" not in st.session_state:
        st.session_state[K + "tatoeba"] = [c for c in DEFAULT_RETRIEVAL_LANGUAGES if c in options]
    retrieval = c3.multiselect("Tatoeba retrieval languages (each arm's encoder)", options, key=K + "tatoeba")
    return StudyDesign(tuple(targets), subsets, rule, draw_seed, int(steps), mode, sampling, float(temperature),
                       control, seeds, encoder=settings.encoder, data_root=settings.data_root,
                       retrieval_languages=tuple(retrieval), device=settings.device)


def preview(design: StudyDesign, data_root: str | None) -> None:
    """The jobs the design launches, in order, and its estimated time on this machine's 2-core CPU model."""
    jobs = design.job_fields(PLACEHOLDER)
    table = [{"job": key, "task": fields["task"], "intermediate tasks": ", ".join(fields.get("intermediate_tasks", [])),
              "starts from": fields.get("init_from") or "the base encoder",
              "max length": fields.get("max_length", JobSpec.max_length), "seeds": len(fields["seeds"])}
             for key, fields in jobs]
    st.dataframe(pd.DataFrame(table), hide_index=True)
    arms = sum(1 for subset in design.subsets if subset)
    estimate = ""
    if all(t.task in STEP_SECONDS for t in design.targets):
        sizes = {t.task: catalog.task_languages_now(t.task, data_root)["en"]["train"] for t in design.targets}
        hours = study_hours(design, sizes)["total"]
        estimate = (f"; about {hours:.1f} h in fp32 on a 2-core CPU (the reproduction's timing model), minutes per "
                    "run on a GPU")
    st.caption(f"{len(jobs)} jobs: {arms} arm job(s) first, then the jobs that start from their encoders{estimate}.")


def launch(design: StudyDesign) -> None:
    problems = design.problems()
    specs = []
    try:
        specs = [(key, JobSpec.from_dict(fields)) for key, fields in design.job_fields(PLACEHOLDER)]
    except ConfigError as exc:
        problems.append(str(exc))
    for key, spec in specs:  # init_from is checked when the job starts: its arm has not run yet
        problems += [f"{key} · {name}: {message}" for name, message in spec.problems().items() if name != "init_from"]
    if problems:
        for problem in problems:
            st.error(problem, icon=":material/error:")
        return
    background.check_capacity(len(specs))
    name = f"study {time.strftime('%Y-%m-%d %H:%M:%S')}"
    root = cache_subdir("studies") / name.replace(" ", "-").replace(":", "")
    design = StudyDesign.from_dict({**design.to_dict(), "name": name})
    write_json(root / DESIGN_FILE, design.to_dict())  # beside its jobs, so the study is found again
    folders = design.launch(lambda key, fields: str(background.submit(JobSpec.from_dict(fields), root / key).out_dir))
    st.session_state[K + "launched"] = name
    st.success(f"Submitted {len(folders)} jobs of `{name}` (the arms first; a job whose arm failed fails naming it).")
    widgets.page_link("pages/jobs.py", "Follow them on the Jobs page", icon=":material/list_alt:")


def offer_recorded_study() -> None:
    """With no study among the jobs here: the repository's recorded one, opened in place, when there is one."""
    recorded = runs.recorded_study()
    if recorded is None:
        st.info("No finished study yet: design and launch one above; its results show here as its jobs finish.")
        return
    folder, finished = recorded
    st.info(f"No finished study yet among the jobs here. The repository's reproduction holds one "
            f"(`docs/reproduction/study`, {finished} job(s) with finished runs so far): open it to see its results, "
            "read in place, or design and launch one above.")
    if st.button("Open the recorded study", icon=":material/folder_open:", key=K + "open_record"):
        runs.store().add_finished_under(folder)
        st.rerun()


def results_section() -> None:
    studies = study.find_studies(runs.finished_jobs())
    if not studies:
        offer_recorded_study()
        return
    names = list(studies)
    if st.session_state.get(K + "launched") in names and K + "study" not in st.session_state:
        st.session_state[K + "study"] = st.session_state[K + "launched"]
    name = st.selectbox("Study", names, key=K + "study")
    jobs = studies[name]
    results = {key: found for key, job in jobs.items() if (found := runs.job_results(job)) is not None}
    design_path = next(iter(jobs.values())).out_dir.parent / Path(DESIGN_FILE).name
    if design_path.is_file():
        design = StudyDesign.from_dict(json.loads(design_path.read_text()))
        st.caption(report_study.design_in_words(design))
        st.markdown(f"**Progress.** {study.progress_in_words(design, results)}")
    budget = study.budget_table(results)
    if budget:
        st.subheader("Budget")
        say = st.warning if study.budget_in_words(budget).startswith("NOT EQUAL") else st.markdown
        say(study.budget_in_words(budget))
        st.dataframe(pd.DataFrame(report_study.budget_cells(budget)), hide_index=True)
    learning = study.learning_table(results)
    if learning:
        st.subheader("Did each intermediate task learn?")
        flagged = sorted({row["task"] for row in learning if row["learned"] is False})
        if flagged:
            st.warning(f"Did not learn in at least one run: {', '.join(flagged)}.")
        st.dataframe(pd.DataFrame(report_study.learning_cells(learning)), hide_index=True)
    for target in study.study_targets(results):
        for aggregation in study.study_aggregations(results, target):
            rows = study.arm_table(results, target, aggregation)
            st.subheader(f"{target}, {aggregation}")
            st.dataframe(pd.DataFrame(report_study.arm_cells(rows)), hide_index=True)
            if report_study.scores_note(rows):
                st.caption(report_study.scores_note(rows))
            note = study.excluded_note(rows)
            if note:
                st.warning(note)
            for reference in study.REFERENCES:
                said = study.answer(rows, reference)
                if said:
                    st.markdown(f"**{said}.**")
    retrieval = study.retrieval_table(results)
    if retrieval:
        st.subheader("Tatoeba retrieval of each arm's encoder")
        st.dataframe(pd.DataFrame(report_study.retrieval_cells(retrieval)), hide_index=True)
    st.caption("Mean over seeds [95% interval, a score's clipped to 0–100]; changes paired over the seeds both arms "
               "have, runs at the majority class left out. An interval that contains 0 is inconclusive, whatever the "
               "sign.")


def main() -> None:
    st.title("Intermediate tasks")
    st.caption("Does the number of English intermediate tasks before the target task change zero-shot transfer "
               "(Phang et al. 2020)? Every arm (0, 1, 3, 9 tasks, and a control on the target task itself) spends "
               "the same intermediate budget; each arm's encoder is trained once per seed and shared by its target "
               "jobs and its Tatoeba retrieval.")
    with st.expander("Design and launch a study", expanded=not runs.finished_jobs()):
        try:
            design = design_form()
        except ConfigError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            preview(design, session.settings().data_root)
            if st.button("Launch the study", type="primary", key=K + "launch"):
                launch(design)
    st.subheader("Results")
    results_section()


guard.run_page(main)
