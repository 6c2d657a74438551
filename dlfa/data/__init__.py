"""Tasks and data: the task contract (`base`), readers per format (`readers`), the registry and sources
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
