"""How a page shows a problem the user can fix: a DlfaError becomes one st.error line, never a traceback
(`run_page` around a page's body, `guarded` around a fragment); `require` turns a missing module into one."""
from __future__ import annotations

import functools
import importlib
from typing import Callable

import streamlit as st

from dlfa.errors import DlfaError


def ensure_navigation() -> None:
    """Make a deep link on a freshly started server go through app.py.

    Streamlit treats the first run of a server whose main script has a `pages/` folder beside it as a legacy
    multipage app (it runs pages/<name>.py alone: no sidebar settings, file names as the menu) until some run
    calls st.navigation. When a page finds itself run that way, it switches the server to st.navigation mode
    and reruns, so app.py (sidebar, navigation) runs and routes to this page by its URL.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def run_page(body: Callable[[], None]) -> None:
    """Run a page's body; a DlfaError (a problem the user can fix) is shown as st.error with its message."""
    ensure_navigation()
    try:
        body()
    except DlfaError as exc:
        st.error(str(exc), icon=":material/error:")


def guarded(func: Callable) -> Callable:
    """Wrap a callable (e.g. a fragment body) so that a DlfaError shows as st.error instead of escaping."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DlfaError as exc:
            st.error(str(exc), icon=":material/error:")
            return None

    return wrapper


def field_error(problems: dict[str, str], *names: str) -> None:
    """Show the problem(s) of these spec fields right under the widget that sets them."""
    for name in names:
        if name in problems:
            st.error(problems[name], icon=":material/error:")


def require(module: str):
    """Import a dlfa module a page needs; a readable DlfaError when it is missing from this installation."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DlfaError(f"this page needs {module}, which cannot be imported here ({exc})") from exc
