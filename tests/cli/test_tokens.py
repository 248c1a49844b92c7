"""The tokens the embedded stack generates and keeps, and where a client finds its own."""

from __future__ import annotations

from modelwatch.tokens import (
    STACK_FILES,
    client_token,
    keep_stack_tokens,
    load_token_files,
    stack_tokens,
)


def test_up_generates_each_token_once_and_keeps_it_private(tmp_path):
    keep_stack_tokens(tmp_path, {})
    first = stack_tokens(tmp_path, {})
    assert set(first) == set(STACK_FILES) and len(set(first.values())) == len(STACK_FILES)
    for file in STACK_FILES.values():
        assert (tmp_path / file).stat().st_mode & 0o777 == 0o600
    keep_stack_tokens(tmp_path, {})
    assert stack_tokens(tmp_path, {}) == first, "the next up reuses them"


def test_a_token_given_in_the_environment_wins_and_is_kept(tmp_path):
    keep_stack_tokens(tmp_path, {})
    (tmp_path / "webhook_token").chmod(0o644)
    env = {"MODELWATCH_WEBHOOK_TOKEN": "given"}
    keep_stack_tokens(tmp_path, env)
    assert stack_tokens(tmp_path, env)["MODELWATCH_WEBHOOK_TOKEN"] == "given"
    assert (tmp_path / "webhook_token").read_text() == "given"  # Alertmanager's credentials_file
    assert (tmp_path / "webhook_token").stat().st_mode & 0o777 == 0o600


def test_a_client_reads_the_variable_else_the_stack_file(tmp_path, monkeypatch):
    monkeypatch.delenv("MODELWATCH_FEEDBACK_TOKEN", raising=False)
    assert client_token("MODELWATCH_FEEDBACK_TOKEN", tmp_path) is None
    keep_stack_tokens(tmp_path, {})
    kept = (tmp_path / "feedback_token").read_text()
    assert client_token("MODELWATCH_FEEDBACK_TOKEN", tmp_path) == kept
    monkeypatch.setenv("MODELWATCH_FEEDBACK_TOKEN", "mine")
    assert client_token("MODELWATCH_FEEDBACK_TOKEN", tmp_path) == "mine"


def test_secret_files_fill_only_unset_variables(tmp_path):
    (tmp_path / "admin_token").write_text("from-file\n")
    (tmp_path / "feedback_token").write_text("from-file-too")
    env = {"MODELWATCH_SECRETS_DIR": str(tmp_path), "MODELWATCH_FEEDBACK_TOKEN": "set"}
    load_token_files(env)
    assert (
        env["MODELWATCH_ADMIN_TOKEN"] == "from-file" and env["MODELWATCH_FEEDBACK_TOKEN"] == "set"
    )
    assert "MODELWATCH_WEBHOOK_TOKEN" not in env  # no file: still unset, so a listener refuses
