"""Failed logins at the resident key manager, guarded and audited (admin_api.login_guard).

`check` wraps one credential check: a locked account or client is refused without the
check, a success clears its failures, a failure is counted and audited (the attempt's
identifiers only, never the password or secret) and may start a lockout."""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

from admin_api.access.caller import Caller, Credential
from admin_api.audit import log as audit_log
from admin_api.store.unit_of_work import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

PASSWORD_GRANT = "oauth2/token (password grant)"
LOGIN_FORM = "oauth2/authorize (login form)"
CLIENT_AUTHENTICATION = "oauth2 client authentication"


def check(store: Store, *, organization_id: str, subject: str, credential: Credential, via: str, target_kind: str,
          verify: Callable[[], T | None]) -> T | None:
    """`verify()`'s answer, or None when it fails or the key is locked."""
    guard = store.config.login_guard
    key = (target_kind, organization_id, subject)
    wait = guard.locked(store, key)
    if wait:
        log.warning("%s %r of organization %s is locked out for %.0f s more: refused unchecked (%s)",
                    target_kind, subject[:200], organization_id, wait, via)
        return None
    result = verify()
    if result is not None:
        guard.succeeded(store, key)
        return result
    verdict = guard.failed(store, key)
    detail = f"failed login ({via}): {verdict.failures} in a row"
    if verdict.locked_for:
        detail += f"; locked out for {verdict.locked_for:g} s"
        log.warning("%s %r of organization %s locked out for %g s after %d failed logins",
                    target_kind, subject[:200], organization_id, verdict.locked_for, verdict.failures)
    who = Caller(subject=subject[:255], organization_id=organization_id, credential=credential)
    try:
        audit_log.record_denial(store, audit_log.Entry(who, via, target_kind, subject[:255]), detail)
    except Exception:
        # The refusal stands whether or not its record could be written.
        log.exception("failed login could not be audited")
    return None
