"""`[store] url` in warroom.toml: checked like any key, and the console's fallback log."""

from __future__ import annotations

from pathlib import Path

import pytest

from warroom import events as ev
from warroom.config import load_config
from warroom.errors import WarroomError
from warroom.store import console_log, open_for_console
from warroom.store.pg import PgStore

URL = "postgresql://warroom@db.internal/warroom?incident=inc-42"


def config_with(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "warroom.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_store_url_is_read_and_an_explicit_log_wins(tmp_path: Path) -> None:
    config = load_config(config_with(tmp_path, f'[store]\nurl = "{URL}"\n'))
    assert config.store is not None and config.store.url == URL
    assert console_log(None, config) == URL
    assert console_log("incidents/mine.jsonl", config) == "incidents/mine.jsonl"
    assert console_log(None, load_config(config_with(tmp_path, ""))) is None
    assert console_log(None, None) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql://db.internal/warroom",
            "store.url: postgresql://db.internal/warroom: add ?incident=ID",
        ),
        ("incidents/x.jsonl", "store.url: incidents/x.jsonl: not a postgresql:// URL"),
        (
            "postgresql://bob:s3cret@db/warroom?incident=x",
            "store.url: postgresql://bob:***@db/warroom?incident=x: no password in warroom.toml",
        ),
    ],
)
def test_a_bad_store_url_is_one_line_naming_the_key(tmp_path: Path, url: str, message: str) -> None:
    path = config_with(tmp_path, f'[store]\nurl = "{url}"\n')
    with pytest.raises(WarroomError) as info:
        load_config(path)
    text = str(info.value)
    assert "\n" not in text and "s3cret" not in text
    assert message in text, text


def test_unknown_store_keys_are_refused(tmp_path: Path) -> None:
    path = config_with(tmp_path, f'[store]\nurl = "{URL}"\nuri = "x"\n')
    with pytest.raises(WarroomError, match=r"store\.uri"):
        load_config(path)


def test_the_console_opens_the_configured_incident_unless_given_a_log(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(config_with(tmp_path, f'[store]\nurl = "{pg_url}"\n'))
    store, mirror = open_for_console(None, tmp_path / "default.jsonl", config)
    try:
        store.append(ev.NoteAdded(text="from the configured incident"))
    finally:
        store.close()
    assert mirror.name.endswith(".shared.jsonl") and not (tmp_path / "default.jsonl").exists()
    with PgStore.open(pg_url, create=False, readonly=True) as shared:
        assert [e.summary() for e in shared.read()][-1] == "note: from the configured incident"
    # An explicit --log still wins over the config.
    store, path = open_for_console(str(tmp_path / "mine.jsonl"), tmp_path / "d.jsonl", config)
    store.close()
    assert path == tmp_path / "mine.jsonl" and path.is_file()
