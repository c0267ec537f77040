"""argon2id hashes and the password rules."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from staff.passwords import (
    MIN_LENGTH,
    WeakPassword,
    check_policy,
    common_passwords,
    hash_password,
    needs_rehash,
    verify_password,
)


def test_hashes_are_argon2id_salted_and_verify() -> None:
    first, second = (
        hash_password("violet-harbour-lantern-42"),
        hash_password("violet-harbour-lantern-42"),
    )
    assert first.startswith("$argon2id$v=19$")
    assert first != second  # salted
    assert verify_password(first, "violet-harbour-lantern-42")
    assert not verify_password(first, "violet-harbour-lantern-43")
    assert not verify_password("not a hash", "anything")
    assert not needs_rehash(first)


def test_a_weaker_hash_is_flagged_for_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(
        "violet-harbour-lantern-42"
    )
    assert verify_password(weak, "violet-harbour-lantern-42")
    assert needs_rehash(weak)


@pytest.mark.parametrize(
    "password,why",
    [
        ("short-pw", "at least"),
        ("x" * 129, "at most"),
        ("Password1234", "common"),
        ("aaaaaaaaaaaaaaaa", "common"),
        ("olena-the-handler-1", "username"),
    ],
)
def test_weak_passwords_are_refused(password: str, why: str) -> None:
    with pytest.raises(WeakPassword, match=why):
        check_policy(password, "olena")


def test_a_long_uncommon_password_passes() -> None:
    check_policy("violet-harbour-lantern-42", "olena")
    check_policy("ж" * MIN_LENGTH + "ab1", "olena")  # any characters, no composition rules


def test_the_common_list_is_loaded_and_lower_case() -> None:
    common = common_passwords()
    assert len(common) >= 100 and "password1234" in common
    assert all(p == p.lower() for p in common)
