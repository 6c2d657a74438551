"""Tasks and data, bottom up: the task contract (`base`), readers per format (`readers`), the split logic
(`splits`), where data comes from (`sources`), the layouts of a data root or the pack (`file_layouts`) and of the
hub (`hub_layouts`), the task table (`tasks`), the caches (`feature_cache`), the lookup and loading API
(`registry`) and the offline classroom pack (`classroom`). The registry's public API is re-exported here."""

from dlfa.data.registry import (
    DataSource,
    available_languages,
    get_task,
    list_tasks,
    load_encoded,
    load_examples,
)

__all__ = ["DataSource", "available_languages", "get_task", "list_tasks", "load_encoded", "load_examples"]
