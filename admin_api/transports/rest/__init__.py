"""REST/JSON face of the admin API, built from the proto descriptors.

`create_app(dispatcher)` returns a Starlette app serving every RPC of
`portcullis.admin.v1` that has a `(portcullis.options.v1.http)` option, plus
`GET /healthz` and `GET /openapi.json` (both without a credential). The protos are the
one schema source: routes, request mapping and the OpenAPI document all come from them.

JSON conventions: proto field names (snake_case) in and out; enums by value name;
unknown fields, null, wrong types and camelCase names are 400s naming the field;
answers include every field without presence (defaults too) so the shape is stable.
"""

from admin_api.transports.rest.app import Dispatcher, create_app

__all__ = ["Dispatcher", "create_app"]
