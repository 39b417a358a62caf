"""Reading the caller from the gateway's headers (services.shared.caller)."""

from __future__ import annotations

import pytest

from services.shared.caller import INTERNAL, Caller, from_headers
from services.shared.errors import BadRequestError


def test_no_consumer_header_is_an_internal_caller_that_sees_everything() -> None:
    caller = from_headers(None, None)
    assert caller == INTERNAL and caller.is_internal
    assert caller.restricted_to is None
    assert caller.may_see("csm_a") and caller.may_see(None)


def test_a_consumer_without_admin_sees_only_its_own_demands() -> None:
    caller = from_headers("csm_a", "catalog:read match:read")
    assert caller == Caller("csm_a", is_admin=False)
    assert caller.restricted_to == "csm_a"
    assert caller.may_see("csm_a")
    assert not caller.may_see("csm_b")
    assert not caller.may_see(None), "demands loaded from inside are not a consumer's"


def test_the_admin_scope_sees_every_demand() -> None:
    caller = from_headers("csm_a", "catalog:read admin")
    assert caller.is_admin and caller.restricted_to is None
    assert caller.may_see("csm_b") and caller.may_see(None)
    assert not from_headers("csm_a", "administrator").is_admin, "whole scope names only"


@pytest.mark.parametrize("value", ["", "with space", "x" * 201, "é", "a\x00b"])
def test_a_malformed_consumer_header_is_a_bad_request(value: str) -> None:
    with pytest.raises(BadRequestError):
        from_headers(value, None)
