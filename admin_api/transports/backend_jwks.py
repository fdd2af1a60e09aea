"""`GET /backend-jwt/jwks.json`: the public keys of backend JWTs, for backends to verify
them. No credential: public keys only. Cached briefly by clients; a backend that meets an
unknown kid fetches again (a new key is published before it signs anything)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from admin_api.backend_jwt.keys import BackendSigningKeys

JWKS_PATH = "/backend-jwt/jwks.json"
MAX_AGE_SECONDS = 60


def backend_jwt_routes(keys: BackendSigningKeys) -> list[BaseRoute]:
    async def jwks(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return JSONResponse({"error": "method_not_allowed", "error_description": "Use GET."}, status_code=405,
                                headers={"Allow": "GET, HEAD"})
        return JSONResponse(await run_in_threadpool(keys.jwks), media_type="application/json",
                            headers={"Cache-Control": f"max-age={MAX_AGE_SECONDS}"})

    return [Route(JWKS_PATH, jwks, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])]
