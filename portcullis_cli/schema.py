"""The admin API as the CLI sees it: every RPC of the generated admin protos that has an
`(portcullis.options.v1.http)` option becomes an Operation (a noun, a verb, the REST
route and the request and answer message types).

The protos are the server's own schema source (its REST routes and /openapi.json are
built from the same options), so a noun or verb added to the protos appears here by
itself: the proto modules are found by listing the generated package, not by a list.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from functools import cache
from types import ModuleType

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from portcullis.options.v1 import http_pb2

ADMIN_PROTO_PACKAGE = "portcullis.admin.v1"

# Where the derived name reads badly or a noun is better known by another name.
_NOUN_RENAMES = {"audit-records": "audit"}
# (noun, verb) for RPCs whose name is not Verb + Noun.
_OPERATION_RENAMES = {"ChangeApiLifecycle": ("apis", "lifecycle"),
                      "CreateOrganizationAdminCredential": ("organizations", "admin-credential")}

_CAMEL_WORD = re.compile(r"[A-Z][a-z0-9]*")
_PATH_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Operation:
    noun: str                 # "api-keys"
    verb: str                 # "generate"
    full_name: str            # "portcullis.admin.v1.ApiKeyService/GenerateApiKey"
    http_method: str          # "POST"
    path: str                 # "/v1/apis/{api_id}/api-keys"
    body: str                 # "", "*" or the name of the request field that is the body
    request: Descriptor
    response: Descriptor

    @property
    def path_fields(self) -> tuple[str, ...]:
        return tuple(_PATH_VARIABLE.findall(self.path))

    @property
    def body_descriptor(self) -> Descriptor | None:
        """The message whose fields the JSON body carries (None: no body)."""
        if not self.body:
            return None
        if self.body == "*":
            return self.request
        return self.request.fields_by_name[self.body].message_type

    @property
    def body_fields(self) -> tuple[FieldDescriptor, ...]:
        descriptor = self.body_descriptor
        if descriptor is None:
            return ()
        skip = set(self.path_fields) if self.body == "*" else set()
        return tuple(f for f in descriptor.fields if f.name not in skip)

    @property
    def query_fields(self) -> tuple[FieldDescriptor, ...]:
        """Request fields a bodiless call sends in the query string (scalars only)."""
        if self.body:
            return ()
        skip = set(self.path_fields)
        return tuple(f for f in self.request.fields
                     if f.name not in skip and f.type != FieldDescriptor.TYPE_MESSAGE)

    @property
    def list_field(self) -> FieldDescriptor | None:
        """The repeated message field of a list answer (`apis` of ListApisResponse)."""
        repeated = [f for f in self.response.fields
                    if f.is_repeated and f.type == FieldDescriptor.TYPE_MESSAGE]
        return repeated[0] if len(repeated) == 1 and self.verb == "list" else None

    @property
    def pages(self) -> bool:
        return "next_page_token" in self.response.fields_by_name and "page_token" in self.request.fields_by_name

    def response_class(self) -> type[Message]:
        return message_factory.GetMessageClass(self.response)


def admin_proto_modules() -> list[ModuleType]:
    """Every generated `*_pb2` module of the admin package, in name order."""
    package = importlib.import_module(ADMIN_PROTO_PACKAGE)
    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__) if info.name.endswith("_pb2"))
    return [importlib.import_module(f"{ADMIN_PROTO_PACKAGE}.{name}") for name in names]


def _kebab(words: list[str]) -> str:
    return "-".join(word.lower() for word in words)


def _plural(word: str) -> str:
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy", "uy")):
        return word[:-1] + "ies"
    if word.endswith("s"):
        return word
    return word + "s"


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def noun_and_verb(method_name: str) -> tuple[str, str]:
    """`GenerateApiKey` -> ("api-keys", "generate"); `ListApis` -> ("apis", "list")."""
    if method_name in _OPERATION_RENAMES:
        return _OPERATION_RENAMES[method_name]
    words = _CAMEL_WORD.findall(method_name)
    if len(words) < 2:
        raise ValueError(f"cannot derive a noun and a verb from {method_name!r}")
    verb, entity = words[0].lower(), words[1:]
    entity[-1] = _plural(_singular(entity[-1]))
    noun = _kebab(entity)
    return _NOUN_RENAMES.get(noun, noun), verb


def _operation(method: MethodDescriptor) -> Operation | None:
    options = method.GetOptions()
    if not options.HasExtension(http_pb2.http):
        return None
    rule = options.Extensions[http_pb2.http]
    noun, verb = noun_and_verb(method.name)
    return Operation(noun=noun, verb=verb, full_name=f"{method.containing_service.full_name}/{method.name}",
                     http_method=rule.method.upper(), path=rule.path, body=rule.body,
                     request=method.input_type, response=method.output_type)


@cache
def operations() -> tuple[Operation, ...]:
    found: list[Operation] = []
    for module in admin_proto_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                operation = _operation(method)
                if operation is not None:
                    found.append(operation)
    return tuple(found)


def nouns() -> dict[str, dict[str, Operation]]:
    """noun -> verb -> Operation, nouns in name order."""
    table: dict[str, dict[str, Operation]] = {}
    for operation in operations():
        verbs = table.setdefault(operation.noun, {})
        if operation.verb in verbs:
            raise ValueError(f"two RPCs map to `{operation.noun} {operation.verb}`: "
                             f"{verbs[operation.verb].full_name} and {operation.full_name}")
        verbs[operation.verb] = operation
    return dict(sorted(table.items()))


def operation(noun: str, verb: str) -> Operation:
    try:
        return nouns()[noun][verb]
    except KeyError:
        raise LookupError(f"the admin API has no `{noun} {verb}`") from None
