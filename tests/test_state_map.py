"""The reducer's persistent structures, `PersistentMap` (probes, services) and `Recent`
(latency histories): they read like a mapping and a sequence, and no update ever changes an
older version."""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest

from warroom import events as ev
from warroom.state import CHUNK, PersistentMap, Recent, fold


def test_it_reads_like_a_dict_in_insertion_order() -> None:
    plain = {f"k{i}": i for i in range(3 * CHUNK + 5)}
    m = PersistentMap(plain)
    assert isinstance(m, Mapping)
    assert m == plain and plain == m and dict(m) == plain
    assert list(m) == list(plain) and list(m.values()) == list(plain.values())
    assert list(m.items()) == list(plain.items()) and len(m.items()) == len(plain)
    assert len(m) == len(plain) and "k7" in m and "nope" not in m
    assert m["k40"] == 40 and m.get("nope") is None and m.get("nope", 1) == 1
    with pytest.raises(KeyError):
        m["nope"]
    assert m != {**plain, "k0": -1} and m != PersistentMap({"k0": 0})
    assert PersistentMap([("a", 1), ("a", 2)]) == {"a": 2}
    assert repr(PersistentMap({"a": 1})) == "PersistentMap({'a': 1})"


def test_updates_never_change_older_versions() -> None:
    rng = random.Random(5)
    versions = [PersistentMap[str, int]()]
    models = [dict[str, int]()]
    for step in range(600):
        key = f"k{rng.randrange(90)}"
        if step % 10 == 0:
            pairs = [(f"k{rng.randrange(120)}", rng.randrange(1000)) for _ in range(15)]
            versions.append(versions[-1].update(pairs))
            models.append({**models[-1], **dict(pairs)})
        else:
            value = rng.randrange(1000)
            versions.append(versions[-1].set(key, value))
            models.append({**models[-1], key: value})
    for version, model in zip(versions, models, strict=True):
        assert dict(version.items()) == model
        assert list(version) == list(model)  # insertion order, like a dict


def test_adding_keys_shares_one_index_and_older_versions_never_see_the_new_keys() -> None:
    base = PersistentMap((f"k{i}", i) for i in range(3 * CHUNK))
    grown = base.set("new", 1).set("newer", 2)
    assert grown._keys is base._keys  # appended in place, not copied
    assert "new" not in base and base.get("new") is None and len(base) == 3 * CHUNK
    with pytest.raises(KeyError):
        base["newer"]
    assert list(base) == [f"k{i}" for i in range(3 * CHUNK)]
    # The same key added again from the older version (a re-fold) reuses the index...
    again = base.set("new", 5)
    assert again._keys is base._keys and dict(again) == {**dict(base), "new": 5}
    # ...while another key there diverges: the newer versions keep theirs.
    other = base.set("other", 3)
    assert list(other)[-1] == "other" and "new" not in other and "other" not in grown
    assert dict(grown) == {**dict(base), "new": 1, "newer": 2}
    assert grown.update([("k0", -1), ("third", 3)])["third"] == 3 and "third" not in grown


def test_unchanged_values_are_shared_not_copied() -> None:
    values = [object() for _ in range(10 * CHUNK)]
    old = PersistentMap((i, v) for i, v in enumerate(values))
    new = old.set(3, object())
    assert new[3] is not old[3]
    assert all(new[i] is values[i] for i in range(10 * CHUNK) if i != 3)
    # Only the chunk holding key 3 was copied; the others are the same tuples.
    assert sum(a is b for a, b in zip(old._chunks, new._chunks, strict=True)) == 9
    assert old.set(5, values[5]) is old and old.update([(5, values[5])]) is old


def test_the_reducer_shares_unchanged_probes_between_states() -> None:
    opened = [
        ev.ProbeStateChanged(
            seq=i + 1, target=f"t{i}", service=f"s{i // 10}", from_state="unknown", to_state="up"
        )
        for i in range(200)
    ]
    before = fold(opened)
    change = ev.ProbeStateChanged(
        seq=300, target="t42", service="s4", from_state="up", to_state="down"
    )
    after = fold([change], before)
    assert after.probes["t42"].state == "down" and before.probes["t42"].state == "up"
    assert all(after.probes[t] is before.probes[t] for t in before.probes if t != "t42")
    assert after.services["s4"].state == "down" and before.services["s4"].state == "up"
    assert after.services["s3"] is before.services["s3"]


def test_recent_keeps_the_last_values_and_never_changes_older_versions() -> None:
    versions = [Recent((), limit=5)]
    for i in range(40):
        versions.append(versions[-1].append(None if i % 7 == 3 else float(i)))
    for n, version in enumerate(versions):
        model = [None if i % 7 == 3 else float(i) for i in range(n)][-5:]
        assert list(version) == model and len(version) == len(model)
        assert version == tuple(model) and version[-2:] == tuple(model[-2:])
        if model:
            assert version[-1] == model[-1] and version[0] == model[0]
    # Appending to an old version (history diverges) leaves the newer ones as they were.
    fork = versions[10].append(99.0)
    assert list(fork)[-1] == 99.0 and list(versions[12])[-1] == 11.0
    with pytest.raises(IndexError):
        versions[2][2]


def test_recent_versions_share_one_buffer_and_a_refold_reuses_it() -> None:
    a = Recent((1.0, 2.0), limit=60)
    b = a.append(3.0)
    c = b.append(4.0)
    assert a._buf is b._buf is c._buf  # no copy per sample
    again = b.append(4.0)  # the same value again, from an older version: reused
    assert again._buf is c._buf and again == c
    long = Recent((), limit=3)
    for i in range(Recent._SPAN + 10):
        long = long.append(float(i))
    assert len(long._buf) < Recent._SPAN and list(long) == [float(i) for i in range(1031, 1034)]


def _samples(seq: int, values: dict[str, float | None]) -> ev.ProbeSamples:
    return ev.ProbeSamples(
        seq=seq,
        ts=f"2025-10-20T07:{seq // 60 % 60:02d}:{seq % 60:02d}.000000Z",
        samples=[
            ev.ProbeSample(target=t, state="up", ok=1, count=1, latency_ms=v)
            for t, v in values.items()
        ],
    )


def test_the_samples_fold_keeps_each_history_as_recent_does_through_forks() -> None:
    """The reducer appends to a probe's history in a loop of its own (5,000 targets a
    second); it must keep `Recent`'s rules: last 60, None for a failure, a fork leaves the
    states before it as they were, a buffer grown to its span starts afresh."""
    rng = random.Random(5)
    values: list[dict[str, float | None]] = [
        {t: (None if rng.random() < 0.1 else round(rng.uniform(1, 900), 1)) for t in ("a", "b")}
        for _ in range(Recent._SPAN + 200)
    ]
    states = [fold([_samples(i + 1, v) for i, v in enumerate(values[:300])])]
    for i, v in enumerate(values[300:], start=301):
        states.append(fold([_samples(i, v)], states[-1]))
    for target in ("a", "b"):
        model = [v[target] for v in values][-60:]
        assert list(states[-1].probes[target].history) == model
    checkpoint = states[500]  # seq 800: a replay seek folds again from here, another way
    fork = fold([_samples(801, {"a": 1.5, "b": None})], checkpoint)
    assert list(fork.probes["a"].history)[-2:] == [values[799]["a"], 1.5]
    assert list(fork.probes["b"].history)[-1] is None
    assert list(states[501].probes["a"].history)[-1] == values[800]["a"]
    again = fold([_samples(801, values[800])], checkpoint)  # the same values: no copy
    assert again.probes["a"].history == states[501].probes["a"].history


def test_lever_changes_share_one_index_between_states_and_each_state_sees_its_own() -> None:
    requests = [
        ev.ControlRequested(
            seq=i + 1, request_id=f"r{i}", service="web", control="rate", to_value=i
        )
        for i in range(3 * CHUNK)
    ]
    states = [fold(requests[:1])]
    for event in requests[1:]:
        states.append(fold([event], states[-1]))
    early, late = states[CHUNK], states[-1]
    assert len(early.changes) == CHUNK + 1 and len(late.changes) == 3 * CHUNK
    assert "r80" in late.changes and "r80" not in early.changes
    assert early.changes["r3"].to_value == 3 and early.changes.get("r80") is None
    assert early.changes._keys is late.changes._keys  # type: ignore[attr-defined]
    assert late.controls["web/rate"].pending == f"r{3 * CHUNK - 1}"
    assert early.controls["web/rate"].pending == f"r{CHUNK}"
