"""Store URLs: what goes to libpq, the incident, and a printable form."""

from __future__ import annotations

import pytest

from warroom.store.url import StoreURLError, is_url, parse_url


def test_the_incident_is_split_off_and_the_rest_goes_to_libpq() -> None:
    url = parse_url("postgresql://ops:s3cret@bastion:6432/warroom?sslmode=require&incident=db-1")
    assert url.incident == "db-1"
    assert url.conninfo == "postgresql://ops:s3cret@bastion:6432/warroom?sslmode=require"
    assert "s3cret" not in url.display and "ops:***@bastion" in url.display
    assert is_url("postgres://x/y") and not is_url("incidents/a.jsonl")


def test_a_url_without_server_takes_the_teams_database_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WARROOM_DB", "postgresql://warroom@bastion/warroom?sslmode=verify-full")
    url = parse_url("postgresql:///?incident=checkout-2025")
    assert url.conninfo == "postgresql://warroom@bastion/warroom?sslmode=verify-full"
    assert url.incident == "checkout-2025"
    monkeypatch.delenv("WARROOM_DB")
    assert parse_url("postgresql:///?incident=x").conninfo == "postgresql:///"  # libpq's env


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("postgresql://h/db", r"add \?incident=ID"),
        ("postgresql://h/db?incident=a/b", "must be 1-128"),
        ("postgresql://h/db?incident=", "must be 1-128"),
        ("postgresql://h/db?incident=a&incident=b", "given 2 times"),
    ],
)
def test_bad_incidents_are_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(StoreURLError, match=message):
        parse_url(text)
