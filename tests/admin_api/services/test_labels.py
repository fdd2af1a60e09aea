"""LabelService: labels on admin objects, for tools that own objects by label."""

from __future__ import annotations

import pytest

from admin_api.errors import InvalidArgument, NotFound
from admin_api.services import apis, labels
from admin_api.store.unit_of_work import Store
from portcullis.admin.v1 import admin_pb2, labels_pb2 as pb
from tests.admin_api.conftest import ADMIN, create_api, create_application


def set_labels(store: Store, kind: str, object_id: str, caller=ADMIN, **values: str) -> pb.ObjectLabels:
    request = pb.SetLabelsRequest(kind=kind, object_id=object_id,
                                  labels=[pb.Label(key=k, value=v) for k, v in values.items()])
    return labels.set_labels(store, request, caller)


def listed(store: Store, caller=ADMIN, **fields: str) -> list[tuple[str, str, dict[str, str]]]:
    answer = labels.list_labels(store, pb.ListLabelsRequest(**fields), caller)
    return [(o.kind, o.object_id, {label.key: label.value for label in o.labels}) for o in answer.objects]


def test_set_replace_remove_and_select(store: Store) -> None:
    api = create_api(store)
    app = create_application(store)
    answer = set_labels(store, "api", api.id, team="pizza", env="prod")
    assert [(label.key, label.value) for label in answer.labels] == [("env", "prod"), ("team", "pizza")]
    set_labels(store, "application", app.id, team="pasta")
    assert listed(store, selector="team=pizza") == [("api", api.id, {"env": "prod", "team": "pizza"})]
    assert listed(store, kind="application") == [("application", app.id, {"team": "pasta"})]
    assert len(listed(store)) == 2
    set_labels(store, "api", api.id, team="pasta")  # replaces, not merges
    assert listed(store, selector="team=pasta,env=prod") == []
    assert {o[1] for o in listed(store, selector="team=pasta")} == {api.id, app.id}
    set_labels(store, "api", api.id)  # none: removed
    assert [o[1] for o in listed(store)] == [app.id]


def test_labels_of_a_deleted_object_are_not_listed(store: Store) -> None:
    api = create_api(store)
    set_labels(store, "api", api.id, team="pizza")
    apis.delete_api(store, admin_pb2.DeleteApiRequest(id=api.id), ADMIN)
    assert listed(store) == []


def test_only_existing_objects_of_the_callers_organization(store: Store, acme) -> None:
    api = create_api(store)
    with pytest.raises(NotFound):
        set_labels(store, "api", "no-such-api", team="pizza")
    with pytest.raises(NotFound):
        set_labels(store, "api", api.id, caller=acme, team="pizza")
    set_labels(store, "api", api.id, team="pizza")
    assert listed(store, caller=acme) == []


@pytest.mark.parametrize("kind, values, field", [
    ("gateway", {"team": "x"}, "kind"),
    ("api", {"-bad": "x"}, "labels[0].key"),
    ("api", {"team": "not ok"}, "labels[0].value"),
    ("api", {f"k{i}": "v" for i in range(33)}, "labels"),
])
def test_refuses_bad_labels(store: Store, kind: str, values: dict[str, str], field: str) -> None:
    api = create_api(store)
    with pytest.raises(InvalidArgument) as raised:
        set_labels(store, kind, api.id, **values)
    assert raised.value.field == field


def test_refuses_a_bad_selector(store: Store) -> None:
    with pytest.raises(InvalidArgument) as raised:
        labels.list_labels(store, pb.ListLabelsRequest(selector="team"), ADMIN)
    assert raised.value.field == "selector"
