"""The sections of a `portcullis/v1` file: which noun each one is, how one object is
named, and how it refers to others. Fields come from the protos (the noun's list item
message and its create request): only naming and references are said here, so adding
a noun is one Kind entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from portcullis.options.v1 import http_pb2
from portcullis_cli.schema import Operation, nouns

API_VERSION = "portcullis/v1"


@dataclass(frozen=True)
class Ref:
    """A file field naming an object of another section instead of carrying its id."""

    name: str       # "api" in the file
    id_field: str   # "api_id" in the messages
    section: str    # "apis": whose key it names


@dataclass(frozen=True)
class State:
    """A field changed by its own verb (an API's lifecycle), after create or update."""

    field: str      # "lifecycle_state"
    verb: str       # "lifecycle"
    argument: str   # "target_state"
    initial: str    # the state a new object starts in


@dataclass(frozen=True)
class Kind:
    section: str                    # "apis"
    noun: str                       # "apis"
    key: tuple[str, ...]            # the file fields that name one object
    refs: tuple[Ref, ...] = ()
    create_verb: str = "create"
    state: State | None = None
    parent: Ref | None = None       # listed per object of another section
    never: frozenset[str] = frozenset()  # answer fields a file never carries
    # Objects the server makes itself, never created, changed or deleted from a file.
    builtin: tuple[str, str] | None = None  # (field, value): KeyManager type RESIDENT
    # (field, when field, is value): a field the server made, left out of dumps (the
    # consumer key of a generated application key; a mapped key's is the user's).
    server_made: tuple[str, str, str] | None = None
    label_kind: str | None = None   # its kind for LabelService (None: cannot be labelled)

    @property
    def verbs(self) -> dict[str, Operation]:
        return nouns().get(self.noun, {})

    @property
    def available(self) -> bool:
        """The server's protos have this noun (throttling policies, gateways: once they land)."""
        return "list" in self.verbs and self.create_verb in self.verbs

    @property
    def message(self) -> Descriptor:
        list_field = self.verbs["list"].list_field
        assert list_field is not None
        return list_field.message_type

    @property
    def singular(self) -> str:
        """"throttling policy" for the section throttling_policies."""
        words = self.section.split("_")
        last = words[-1]
        words[-1] = last[:-3] + "y" if last.endswith("ies") else last[:-1]
        return " ".join(words)

    def fixed_fields(self) -> frozenset[str]:
        """File fields an update cannot change (the protos mark them immutable; a reference
        is fixed when its id field is). Without an update verb, every field is fixed."""
        fixed = {f.name for f in self.message.fields if f.GetOptions().Extensions[http_pb2.immutable]}
        fixed |= {ref.name for ref in self.refs if ref.id_field in fixed}
        return frozenset(fixed)

    def file_fields(self) -> dict[str, FieldDescriptor | Ref]:
        """What an object of this section may say: message and create fields, less ids."""
        hidden = {"id", "organization_id", *self.never, *(r.id_field for r in self.refs)}
        fields: dict[str, FieldDescriptor | Ref] = {}
        create = self.verbs[self.create_verb]
        for descriptor_field in [*self.message.fields, *create.body_fields]:
            name = descriptor_field.name
            if name in hidden or name.endswith("_set") or name in fields:
                continue
            if descriptor_field.message_type is not None and descriptor_field.message_type.name == "Timestamp":
                continue  # times are the server's (created_at, expires_at from validity_days)
            fields[name] = descriptor_field
        for ref in self.refs:
            fields[ref.name] = ref
        return fields


_ANSWER_ONLY = frozenset({"created_at", "updated_at", "base_path", "masked_value"})

KINDS: tuple[Kind, ...] = (
    Kind("key_managers", "key-managers", ("name",), never=_ANSWER_ONLY, builtin=("type", "RESIDENT"),
         label_kind="key_manager"),
    Kind("scopes", "scopes", ("name",), never=_ANSWER_ONLY, label_kind="scope"),
    Kind("users", "users", ("username",), never=_ANSWER_ONLY, label_kind="user"),
    # Names are unique per kind: `Unlimited` is a SUBSCRIPTION, an APPLICATION and an API policy.
    Kind("throttling_policies", "throttling-policies", ("kind", "name"), never=_ANSWER_ONLY),
    Kind("apis", "apis", ("name", "version"), never=_ANSWER_ONLY,
         state=State("lifecycle_state", "lifecycle", "target_state", "CREATED"), label_kind="api"),
    Kind("applications", "applications", ("name",), never=_ANSWER_ONLY, label_kind="application"),
    Kind("application_keys", "application-keys", ("application", "environment", "key_manager"),
         refs=(Ref("application", "application_id", "applications"),
               Ref("key_manager", "key_manager_id", "key_managers")),
         create_verb="generate", parent=Ref("application", "application_id", "applications"),
         server_made=("consumer_key", "origin", "GENERATED"),
         never=_ANSWER_ONLY | {"secret_description", "secret_validity_days", "origin"},
         label_kind="application_key"),
    Kind("subscriptions", "subscriptions", ("application", "api"),
         refs=(Ref("application", "application_id", "applications"), Ref("api", "api_id", "apis")),
         never=_ANSWER_ONLY, label_kind="subscription"),
    Kind("api_keys", "api-keys", ("api", "name"),
         refs=(Ref("api", "api_id", "apis"), Ref("application", "application_id", "applications")),
         create_verb="generate",
         never=_ANSWER_ONLY | {"status", "owner", "revoked_by", "replaced_by", "validity_days"},
         label_kind="api_key"),
)


def available_kinds() -> list[Kind]:
    return [kind for kind in KINDS if kind.available]


def labels_available() -> bool:
    """The server has LabelService (what --prune and labelled dumps need)."""
    return {"set", "list"} <= set(nouns().get("labels", {}))


def secret_field(name: str) -> bool:
    """Written only as a reference to the environment or a file, never in the file itself."""
    return name == "password" or name.endswith("secret") or name.endswith("access_token")

