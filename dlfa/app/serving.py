"""Shared-server mode: what the app allows when people other than the operator can reach it.

It is on whenever Streamlit listens on anything but the loopback interface (`server.address` other than
localhost, 127.0.0.1 or ::1; unset means every interface), or when the operator sets DLFA_SHARED=1. Then:

- no server paths from the browser: files come as uploads only;
- data roots and encoders only from the operator's lists: DLFA_ALLOWED_DATA_ROOTS (folders separated by the
  platform's path separator, ':' on Linux) and DLFA_ALLOWED_ENCODERS (comma-separated encoder specs), besides
  the defaults (the server's own data source, the embedded encoder);
- at most DLFA_SESSION_JOB_LIMIT (default 3) queued or running jobs per browser session;
- cancel, resume and delete only for the jobs a session submitted, unless the operator password
  (DLFA_OPERATOR_PASSWORD) is given.

Library code without Streamlit: `dlfa.app.session` reads the address and the session and calls these functions.
"""
from __future__ import annotations

import hmac
import os
from pathlib import Path

from dlfa.model.encoders import DEFAULT_ENCODER
from dlfa.errors import ConfigError

SHARED_ENV = "DLFA_SHARED"
ALLOWED_DATA_ROOTS_ENV = "DLFA_ALLOWED_DATA_ROOTS"
ALLOWED_ENCODERS_ENV = "DLFA_ALLOWED_ENCODERS"
SESSION_JOB_LIMIT_ENV = "DLFA_SESSION_JOB_LIMIT"
OPERATOR_PASSWORD_ENV = "DLFA_OPERATOR_PASSWORD"
DEFAULT_SESSION_JOB_LIMIT = 3  # the intermediate-task study submits three jobs at once
LOOPBACK = ("localhost", "127.0.0.1", "::1")
SESSION_OPTION = "session"  # the job option that records the browser session that submitted it


def shared_mode(address: str | None) -> bool:
    """True unless the server listens on the loopback interface only and DLFA_SHARED is not set."""
    if os.environ.get(SHARED_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    return (address or "").strip().strip("[]").lower() not in LOOPBACK


def allowed_data_roots() -> list[str]:
    """The data roots a shared server offers: "" (the server's own source: $DLFA_DATA_DIR, else the classroom
    pack, else the hub), $DLFA_DATA_DIR itself and the operator's folders, resolved."""
    folders = [os.environ.get("DLFA_DATA_DIR", ""), *os.environ.get(ALLOWED_DATA_ROOTS_ENV, "").split(os.pathsep)]
    return ["", *dict.fromkeys(str(Path(p).expanduser().resolve()) for p in folders if p.strip())]


def allowed_encoders() -> list[str]:
    """The encoders a shared server offers: the embedded one and the operator's specs."""
    configured = [e.strip() for e in os.environ.get(ALLOWED_ENCODERS_ENV, "").split(",") if e.strip()]
    return list(dict.fromkeys([DEFAULT_ENCODER, *configured]))


def session_job_limit() -> int:
    value = os.environ.get(SESSION_JOB_LIMIT_ENV, "").strip()
    if not value:
        return DEFAULT_SESSION_JOB_LIMIT
    try:
        return max(0, int(value))
    except ValueError as exc:
        raise ConfigError(f"{SESSION_JOB_LIMIT_ENV} must be a whole number, got '{value}'") from exc


def operator_password_matches(given: str) -> bool:
    """True when DLFA_OPERATOR_PASSWORD is set and `given` equals it (compared in constant time)."""
    expected = os.environ.get(OPERATOR_PASSWORD_ENV, "")
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def check_allowed(spec) -> None:
    """ConfigError when a JobSpec names a data root or an encoder the operator did not allow."""
    root = str(Path(spec.data_root).expanduser().resolve()) if spec.data_root else ""
    if root not in allowed_data_roots():
        raise ConfigError(f"data root {spec.data_root} is not offered on this shared server; the operator lists "
                          f"the allowed ones in {ALLOWED_DATA_ROOTS_ENV}")
    if spec.encoder not in allowed_encoders():
        raise ConfigError(f"encoder {spec.encoder} is not offered on this shared server; choose one of "
                          f"{', '.join(allowed_encoders())} (the operator lists them in {ALLOWED_ENCODERS_ENV})")


def submitted_by(job) -> str | None:
    """The browser session that submitted a job (None: the CLI, a record, or a local app)."""
    return job.options.get(SESSION_OPTION)


def check_session_capacity(jobs, session_id: str, adding: int = 1) -> None:
    """ConfigError when `adding` more jobs would take the session past its limit of queued and running jobs."""
    limit = session_job_limit()
    active = sum(1 for job in jobs if job.active and submitted_by(job) == session_id)
    if active + adding > limit:
        raise ConfigError(f"this session has {active} queued or running job(s) and may have at most {limit} on this "
                          "shared server: wait for one to finish, or cancel one on the Jobs page")


def may_control(job, session_id: str, operator: bool) -> bool:
    """Whether a session may cancel, resume or delete a job on a shared server."""
    return operator or (submitted_by(job) is not None and submitted_by(job) == session_id)
