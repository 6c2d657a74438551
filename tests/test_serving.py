"""Shared-server mode policy (dlfa.app.serving): when it is on, what it allows, whose jobs a session controls."""
from dataclasses import dataclass, field

import pytest

from dlfa.app import serving
from dlfa.errors import ConfigError
from dlfa.engine.spec import JobSpec


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (serving.SHARED_ENV, serving.ALLOWED_DATA_ROOTS_ENV, serving.ALLOWED_ENCODERS_ENV,
                 serving.SESSION_JOB_LIMIT_ENV, serving.OPERATOR_PASSWORD_ENV, "DLFA_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("address, shared", [
    ("localhost", False), ("127.0.0.1", False), ("::1", False), ("[::1]", False), ("LOCALHOST", False),
    ("0.0.0.0", True), ("::", True), ("192.168.1.20", True), ("", True), (None, True),  # unset: every interface
])
def test_shared_whenever_not_bound_to_loopback(address, shared):
    assert serving.shared_mode(address) is shared


def test_shared_by_explicit_setting(monkeypatch):
    monkeypatch.setenv(serving.SHARED_ENV, "1")
    assert serving.shared_mode("localhost")


def test_only_the_operators_data_roots_and_encoders(monkeypatch, tmp_path):
    allowed = tmp_path / "data"
    allowed.mkdir()
    monkeypatch.setenv(serving.ALLOWED_DATA_ROOTS_ENV, f"{allowed}:{tmp_path / 'more'}")
    monkeypatch.setenv(serving.ALLOWED_ENCODERS_ENV, "bert-base-multilingual-cased, xlm-roberta-base")
    assert serving.allowed_data_roots() == ["", str(allowed), str(tmp_path / "more")]
    assert serving.allowed_encoders() == ["embedded:e5-small", "bert-base-multilingual-cased", "xlm-roberta-base"]
    spec = JobSpec(task="udpos", eval_languages=("de",))
    serving.check_allowed(spec)
    serving.check_allowed(JobSpec(task="udpos", eval_languages=("de",), data_root=str(allowed / "."),
                                  encoder="xlm-roberta-base"))
    with pytest.raises(ConfigError, match="data root /etc is not offered on this shared server"):
        serving.check_allowed(JobSpec(task="udpos", eval_languages=("de",), data_root="/etc"))
    monkeypatch.setenv("DLFA_DATA_DIR", str(tmp_path))  # the server's own data root (the demo names it)
    assert serving.allowed_data_roots() == ["", str(tmp_path), str(allowed), str(tmp_path / "more")]
    serving.check_allowed(JobSpec(task="udpos", eval_languages=("de",), data_root=str(tmp_path)))
    with pytest.raises(ConfigError, match="data root /etc is not offered on this shared server"):
        serving.check_allowed(JobSpec(task="udpos", eval_languages=("de",), data_root="/etc"))
    with pytest.raises(ConfigError, match="encoder /root/model is not offered .* choose one of embedded:e5-small, "):
        serving.check_allowed(JobSpec(task="udpos", eval_languages=("de",), encoder="/root/model"))


@dataclass
class FakeJob:
    status: str
    options: dict = field(default_factory=dict)

    @property
    def active(self):
        return self.status in ("queued", "running")


def test_session_job_limit_counts_only_the_sessions_active_jobs(monkeypatch):
    monkeypatch.setenv(serving.SESSION_JOB_LIMIT_ENV, "2")
    mine = {serving.SESSION_OPTION: "me"}
    jobs = [FakeJob("running", mine), FakeJob("completed", mine), FakeJob("queued", {serving.SESSION_OPTION: "you"})]
    serving.check_session_capacity(jobs, "me")
    with pytest.raises(ConfigError, match=r"has 1 queued or running job\(s\) and may have at most 2"):
        serving.check_session_capacity(jobs, "me", adding=2)
    with pytest.raises(ConfigError, match="has 2 queued or running"):
        serving.check_session_capacity([*jobs, FakeJob("queued", mine)], "me")
    monkeypatch.setenv(serving.SESSION_JOB_LIMIT_ENV, "many")
    with pytest.raises(ConfigError, match="DLFA_SESSION_JOB_LIMIT must be a whole number"):
        serving.session_job_limit()


def test_control_only_of_own_jobs_or_as_operator(monkeypatch):
    mine = FakeJob("running", {serving.SESSION_OPTION: "me"})
    theirs = FakeJob("running", {serving.SESSION_OPTION: "you"})
    cli = FakeJob("running")  # submitted from the command line: no session
    assert serving.may_control(mine, "me", operator=False)
    assert not serving.may_control(theirs, "me", operator=False) and not serving.may_control(cli, "me", operator=False)
    assert serving.may_control(theirs, "me", operator=True)
    assert not serving.operator_password_matches("")  # no password set: nobody is the operator
    monkeypatch.setenv(serving.OPERATOR_PASSWORD_ENV, "s3cret")
    assert serving.operator_password_matches("s3cret") and not serving.operator_password_matches("secret")
