"""Errors that reach users. Each carries a message meant to be shown as is (no traceback)."""


class DlfaError(Exception):
    """Base class: a problem the user can fix (bad input, missing file, ...), with a readable message."""


class EncoderError(DlfaError):
    """An encoder spec that cannot be loaded: unknown scheme, missing folder, corrupted weights, no network."""


class ConfigError(DlfaError):
    """An invalid setting: a fusion layer out of range, an unknown aggregation, an empty language list."""


class DataError(DlfaError):
    """A data file or data source that cannot be read. The message names the file and, where known, the line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path, self.line = path, line
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(where + message)
