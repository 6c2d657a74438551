"""The classroom demo on Home: a real, small job that finishes in a few minutes on 2 CPU cores."""
from __future__ import annotations

from dlfa.app.catalog import task_languages_now
from dlfa.app.session import resolve_source
from dlfa.errors import DlfaError
from dlfa.model.encoders import DEFAULT_ENCODER

DEMO_NAME = "classroom demo"
DEMO_LANGUAGES = {"udpos": ("de", "es", "zh"), "pos-classroom": ("de", "es", "tr")}  # three families
DEMO_FUSION_LAYERS = (3, 6, 9)


def demo_spec(data_root: str | None, encoder: str = DEFAULT_ENCODER, device: str = "auto"):
    """The demo's JobSpec: a probe-mode sweep on POS (udpos from a data root, else pos-classroom from the pack)
    with `last` and `dlfa` at three fusion layers."""
    from dlfa.engine.spec import JobSpec

    source = resolve_source(data_root)
    task = "udpos" if source.kind == "files" else "pos-classroom"
    if task == "udpos":
        available = task_languages_now(task, data_root)
        if "en" not in available or not available.get("en", {}).get("train"):
            task = "pos-classroom"
    available = task_languages_now(task, data_root if task == "udpos" else None)
    if not available:
        raise DlfaError("no POS data found for the demo: give a data root with UD-POS, or build the classroom "
                        "pack (the button above)")
    languages = tuple(lang for lang in DEMO_LANGUAGES[task] if lang in available)
    if not languages:
        languages = tuple(lang for lang in available if lang != "en")[:3]
    return JobSpec(task=task, eval_languages=languages, encoder=encoder, aggregations=("last", "dlfa"),
                   fusion_layers=DEMO_FUSION_LAYERS, seeds=(1,), probe=True,
                   data_root=str(source.root) if task == "udpos" and source.root else None,
                   max_train_examples=800, max_eval_examples=150, epochs=2, batch_size=32,
                   bootstrap_samples=200, device=device, name=DEMO_NAME)
