"""Usage per application and API in admin_api: reports of authz_server processes summed
over reporters, idempotent, bounded in time; read by an application's owner or an admin."""

from __future__ import annotations

import time

import pytest

from admin_api.access.caller import Caller, Role
from admin_api.dispatch import Dispatcher
from admin_api.errors import InvalidArgument, NotFound
from admin_api.services import apis, usage
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import admin_pb2
from portcullis.sync.v1 import sync_pb2
from tests.admin_api.conftest import ADMIN, create_api, published_api

pytestmark = pytest.mark.both_databases

HOUR = 3600
SAM = Caller(subject="sam", organization_id="default", role=Role.SUBSCRIBER)
OLGA = Caller(subject="olga", organization_id="default", role=Role.SUBSCRIBER)


def this_hour(hours_ago: int = 0) -> int:
    return int(time.time()) // HOUR * HOUR - hours_ago * HOUR


def report(store: Store, reporter: str, *counts: tuple) -> int:
    return usage.record_report(store, sync_pb2.UsageReport(reporter=reporter, counts=[
        sync_pb2.UsageCount(hour_start=hour, application_id=app, api_id=api, outcome=outcome, reason=reason,
                            count=n) for hour, app, api, outcome, reason, n in counts]))


def read(store: Store, application_id: str, caller: Caller = ADMIN, hours: int = 0) -> admin_pb2.ApplicationUsage:
    return Dispatcher(store).call("portcullis.admin.v1.ApplicationService/GetApplicationUsage",
                                  admin_pb2.GetApplicationUsageRequest(id=application_id, hours=hours), caller)


def figures(answer: admin_pb2.ApplicationUsage) -> list[tuple]:
    return [(a.api_name, a.calls, a.allowed, a.denied, a.would_deny, [(d.reason, d.count) for d in a.denials])
            for a in answer.apis]


@pytest.fixture
def world(store: Store):
    pizza = published_api(store, name="Pizza", context="/pizza")
    pasta = published_api(store, name="Pasta", context="/pasta")
    application = Dispatcher(store).call("portcullis.admin.v1.ApplicationService/CreateApplication",
                                         admin_pb2.CreateApplicationRequest(name="Mine"), SAM)
    return pizza, pasta, application


def test_summed_over_reporters_per_api_with_denials_by_reason(store: Store, world) -> None:
    pizza, pasta, app = world
    now = this_hour()
    report(store, "authz@a:1/worker-0", (now, app.id, pizza.id, "allow", "allowed", 5),
           (now, app.id, pizza.id, "deny", "ip_not_allowed", 2), (now, app.id, pasta.id, "allow", "allowed", 1))
    report(store, "authz@b:7/worker-1", (now, app.id, pizza.id, "allow", "allowed", 3),
           (this_hour(1), app.id, pizza.id, "deny", "subscription_not_found", 4),
           (now, app.id, pizza.id, "would_deny", "scope_missing", 1))
    answer = read(store, app.id, SAM)
    assert figures(answer) == [
        ("Pizza", 15, 8, 6, 1, [("subscription_not_found", 4), ("ip_not_allowed", 2), ("scope_missing", 1)]),
        ("Pasta", 1, 1, 0, 0, [])]
    assert answer.since.seconds == this_hour(23)
    # The last hour only.
    assert figures(read(store, app.id, SAM, hours=1))[0][:4] == ("Pizza", 11, 8, 2)


def test_a_report_taken_twice_or_late_counts_once(store: Store, world) -> None:
    pizza, _, app = world
    now = this_hour()
    report(store, "authz@a:1", (now, app.id, pizza.id, "allow", "allowed", 5))
    report(store, "authz@a:1", (now, app.id, pizza.id, "allow", "allowed", 5))   # again
    report(store, "authz@a:1", (now, app.id, pizza.id, "allow", "allowed", 3))   # an older, late one
    assert figures(read(store, app.id))[0][1] == 5
    report(store, "authz@a:1", (now, app.id, pizza.id, "allow", "allowed", 9))
    assert figures(read(store, app.id))[0][1] == 9


def test_unknown_applications_are_dropped_and_old_hours_pruned(store: Store, world) -> None:
    pizza, _, app = world
    assert report(store, "r", (this_hour(), "no-such-app", pizza.id, "allow", "allowed", 5),
                  (this_hour(), app.id, pizza.id, "allow", "allowed", 1)) == 1
    with pytest.raises(InvalidArgument, match="in an hour of the last 25"):
        report(store, "r", (this_hour(30), app.id, pizza.id, "allow", "allowed", 1))
    assert figures(read(store, app.id))[0][1] == 1


@pytest.mark.parametrize("count", [
    (0, "app", "api", "allow", "allowed", 1),                 # hour 1970
    (1, "app", "api", "allow", "allowed", 1),                 # not an hour's start
    (None, "app", "api", "maybe", "allowed", 1),
    (None, "app", "api", "deny", "Not A Code", 1),
    (None, "a b", "api", "allow", "allowed", 1),
    (None, "app", "api", "allow", "allowed", -1),
], ids=["epoch", "mid-hour", "outcome", "reason", "id", "negative"])
def test_malformed_counts_are_refused(store: Store, count: tuple) -> None:
    hour = this_hour() if count[0] is None else count[0]
    with pytest.raises(InvalidArgument):
        report(store, "r", (hour, *count[1:]))


def test_only_the_owner_or_an_admin_reads_it(store: Store, world) -> None:
    pizza, _, app = world
    report(store, "r", (this_hour(), app.id, pizza.id, "allow", "allowed", 1))
    with pytest.raises(NotFound):
        read(store, app.id, OLGA)
    assert figures(read(store, app.id, ADMIN))[0][1] == 1
    with pytest.raises(InvalidArgument):
        read(store, app.id, SAM, hours=25)


def test_an_api_the_subscriber_may_no_longer_see_is_shown_by_id_only(store: Store, world) -> None:
    pizza, _, app = world
    report(store, "r", (this_hour(), app.id, pizza.id, "allow", "allowed", 1))
    apis.change_api_lifecycle(store, admin_pb2.ChangeApiLifecycleRequest(id=pizza.id,
                              target_state=admin_pb2.Api.RETIRED), ADMIN)
    (row,) = read(store, app.id, SAM).apis
    assert (row.api_id, row.api_name, row.calls) == (pizza.id, "", 1)
    assert read(store, app.id, ADMIN).apis[0].api_name == "Pizza"
