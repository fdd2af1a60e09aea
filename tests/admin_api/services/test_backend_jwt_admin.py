"""Backend JWT, admin side: per-API configuration, the signing key ring (first key,
rotation with overlap, pruning), the JWKS, the sync record and encryption at rest."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update

from admin_api.backend_jwt.keys import OVERLAP, BackendSigningKeys
from admin_api.db.backend_jwt_models import BackendSigningKey
from admin_api.db.models import ChangeRecord
from admin_api.db.types import utcnow
from admin_api.errors import InvalidArgument, PermissionDenied
from admin_api.services import apis, backend_signing_keys
from admin_api.store.unit_of_work import Store
from admin_api.store import outbox
from admin_api.sync import snapshot
from portcullis.admin.v1 import admin_pb2, backend_signing_keys_pb2, signing_keys_pb2
from portcullis.sync.v1 import sync_pb2
from tests.admin_api.conftest import ADMIN, OTHER_ADMIN, create_api
from tests.admin_api.key_helpers import open_key_store


@pytest.fixture
def kstore(tmp_path: Path) -> Store:
    store = open_key_store(tmp_path / "portcullis.db")
    yield store
    store.db.dispose()


def _config(**fields: object) -> admin_pb2.BackendJwtConfig:
    config = admin_pb2.BackendJwtConfig(enabled=True)
    for name, value in fields.items():
        if name == "claim_mappings":
            config.claim_mappings.extend(admin_pb2.ClaimMapping(from_claim=f, to_claim=t) for f, t in value)
        elif name == "static_claims":
            config.static_claims.extend(admin_pb2.StaticClaim(name=n, value=v) for n, v in value)
        else:
            setattr(config, name, value)
    return config


def _records(store: Store) -> list[sync_pb2.BackendSigningKeyRecord]:
    _, entities = snapshot.load(store)
    return [e.backend_signing_key for e in entities if e.HasField("backend_signing_key")]


# --- configuration --------------------------------------------------------------------


def test_defaults_are_filled_in_and_pass_authorization_header_is_kept(kstore):
    api = create_api(kstore, backend_jwt=admin_pb2.BackendJwtConfig(enabled=True), pass_authorization_header=True)
    assert api.backend_jwt == admin_pb2.BackendJwtConfig(enabled=True, header="x-jwt-assertion",
                                                         validity_seconds=300, algorithm="ES256")
    assert api.pass_authorization_header is True
    assert apis.get_api(kstore, admin_pb2.GetApiRequest(id=api.id), ADMIN).backend_jwt == api.backend_jwt


def test_an_api_without_backend_jwt_has_none(kstore):
    api = create_api(kstore)
    assert not api.HasField("backend_jwt") and api.pass_authorization_header is False


@pytest.mark.parametrize("fields, field", [
    pytest.param({"header": "Connection"}, "backend_jwt.header", id="hop-by-hop"),
    pytest.param({"header": "transfer-encoding"}, "backend_jwt.header", id="transfer-encoding"),
    pytest.param({"header": ":path"}, "backend_jwt.header", id="pseudo-header"),
    pytest.param({"header": "X-Portcullis-Environment"}, "backend_jwt.header", id="portcullis-prefix"),
    pytest.param({"header": "x-envoy-original-path"}, "backend_jwt.header", id="envoy-prefix"),
    pytest.param({"header": "Authorization"}, "backend_jwt.header", id="authorization"),
    pytest.param({"header": "apikey"}, "backend_jwt.header", id="the-api-key-header"),
    pytest.param({"header": "bad header"}, "backend_jwt.header", id="not-a-token"),
    pytest.param({"validity_seconds": 5}, "backend_jwt.validity_seconds", id="validity-too-short"),
    pytest.param({"validity_seconds": 3601}, "backend_jwt.validity_seconds", id="validity-too-long"),
    pytest.param({"validity_seconds": -1}, "backend_jwt.validity_seconds", id="validity-negative"),
    pytest.param({"algorithm": "HS256"}, "backend_jwt.algorithm", id="hmac"),
    pytest.param({"algorithm": "none"}, "backend_jwt.algorithm", id="alg-none"),
    pytest.param({"static_claims": [("sub", "x")]}, "backend_jwt.static_claims[0].name", id="static-sub"),
    pytest.param({"static_claims": [("application", "x")]}, "backend_jwt.static_claims[0].name",
                 id="static-portcullis-claim"),
    pytest.param({"claim_mappings": [("email", "iss")]}, "backend_jwt.claim_mappings[0].to_claim",
                 id="mapped-onto-iss"),
    pytest.param({"claim_mappings": [("scopes", "")]}, "backend_jwt.claim_mappings[0].to_claim",
                 id="mapped-onto-scopes-by-default"),
    pytest.param({"claim_mappings": [("email", "mail")], "static_claims": [("mail", "x")]},
                 "backend_jwt.static_claims[0].name", id="mapped-and-static-clash"),
    pytest.param({"claim_mappings": [("", "mail")]}, "backend_jwt.claim_mappings[0].from_claim", id="empty-source"),
    pytest.param({"static_claims": [("bad name", "x")]}, "backend_jwt.static_claims[0].name", id="claim-with-space"),
    pytest.param({"static_claims": [("team", "a\nb")]}, "backend_jwt.static_claims[0].value", id="control-character"),
])
def test_broken_configurations_are_refused(kstore, fields, field):
    with pytest.raises(InvalidArgument) as caught:
        create_api(kstore, backend_jwt=_config(**fields))
    assert caught.value.field == field


def test_mappings_and_static_claims_are_kept_in_order(kstore):
    api = create_api(kstore, backend_jwt=_config(header="X-Backend-Token", validity_seconds=60, algorithm="EdDSA",
                                                 claim_mappings=[("email", ""), ("groups", "roles")],
                                                 static_claims=[("team", "pizza")], include_on_open_resources=True))
    config = api.backend_jwt
    assert (config.header, config.validity_seconds, config.algorithm) == ("x-backend-token", 60, "EdDSA")
    assert [(m.from_claim, m.to_claim) for m in config.claim_mappings] == [("email", "email"), ("groups", "roles")]
    assert [(c.name, c.value) for c in config.static_claims] == [("team", "pizza")]
    assert config.include_on_open_resources is True


def test_update_sets_and_clears_the_configuration(kstore):
    api = create_api(kstore)
    updated = apis.update_api(kstore, admin_pb2.UpdateApiRequest(
        id=api.id, api=admin_pb2.Api(backend_jwt=_config(), pass_authorization_header=True),
        update_mask={"paths": ["backend_jwt", "pass_authorization_header"]}), ADMIN)
    assert updated.backend_jwt.enabled and updated.pass_authorization_header
    cleared = apis.update_api(kstore, admin_pb2.UpdateApiRequest(
        id=api.id, api=admin_pb2.Api(), update_mask={"paths": ["backend_jwt"]}), ADMIN)
    assert not cleared.HasField("backend_jwt")


def test_the_api_key_header_may_not_move_onto_the_backend_jwt_header(kstore):
    api = create_api(kstore, backend_jwt=_config(header="x-token"))
    with pytest.raises(InvalidArgument):
        apis.update_api(kstore, admin_pb2.UpdateApiRequest(
            id=api.id, api=admin_pb2.Api(security=admin_pb2.SecuritySchemes(
                api_key=admin_pb2.ApiKeyScheme(header="X-Token"))),
            update_mask={"paths": ["security"]}), ADMIN)


# --- keys ---------------------------------------------------------------------------------


def test_an_api_asking_for_an_algorithm_gets_its_key_in_the_same_change(kstore):
    assert _records(kstore) == []
    create_api(kstore, backend_jwt=_config(algorithm="RS256"))
    records = _records(kstore)
    assert [r.algorithm for r in records] == ["RS256"]
    create_api(kstore, name="Other", context="/other", backend_jwt=_config(algorithm="RS256"))
    assert len(_records(kstore)) == 1   # one active key per algorithm, reused


@pytest.mark.parametrize("algorithm, kty", [("ES256", "EC"), ("RS256", "RSA"), ("EdDSA", "OKP")])
def test_the_sync_record_carries_a_private_key_matching_the_published_jwk(kstore, algorithm, kty):
    BackendSigningKeys(kstore, kstore.config.kek).ensure_active(algorithm)
    (record,) = _records(kstore)
    jwk = json.loads(record.public_jwk_json)
    assert (jwk["kty"], jwk["alg"], jwk["kid"], jwk["use"]) == (kty, algorithm, record.id, "sig")
    assert record.retired_at_unix == 0 and record.expires_at_unix == 0 and record.not_before_unix > 0
    private_key = serialization.load_pem_private_key(record.private_key_pem.encode(), password=None)
    token = jwt.encode({"sub": "x"}, private_key, algorithm=algorithm, headers={"kid": record.id})
    public = jwt.PyJWK(jwk).key
    assert jwt.decode(token, public, algorithms=[algorithm]) == {"sub": "x"}


def test_rotation_keeps_the_previous_key_published_but_not_signing(kstore):
    ring = BackendSigningKeys(kstore, kstore.config.kek)
    first = ring.ensure_active()
    second = ring.rotate("ES256")
    assert second.kid != first.kid
    records = {r.id: r for r in _records(kstore)}
    assert records[second.kid].retired_at_unix == 0
    old = records[first.kid]
    assert old.retired_at_unix > 0 and old.expires_at_unix - old.retired_at_unix == int(OVERLAP.total_seconds())
    assert {k["kid"] for k in ring.jwks()["keys"]} == {first.kid, second.kid}
    listed = backend_signing_keys.list_backend_signing_keys(
        kstore, backend_signing_keys_pb2.ListBackendSigningKeysRequest(), ADMIN).keys
    assert [(k.kid, k.state) for k in listed] == [(second.kid, signing_keys_pb2.SigningKey.ACTIVE),
                                                  (first.kid, signing_keys_pb2.SigningKey.RETIRED)]


def test_rotation_changes_only_the_named_algorithm(kstore):
    ring = BackendSigningKeys(kstore, kstore.config.kek)
    es = ring.ensure_active("ES256")
    ring.ensure_active("EdDSA")
    ring.rotate("EdDSA")
    active = {r.algorithm: r.id for r in _records(kstore) if r.retired_at_unix == 0}
    assert active["ES256"] == es.kid and set(active) == {"ES256", "EdDSA"}


def test_a_retired_key_leaves_the_jwks_and_the_replicas_after_the_overlap(kstore):
    ring = BackendSigningKeys(kstore, kstore.config.kek)
    first = ring.ensure_active()
    ring.rotate()
    with kstore.write() as writer:  # as if the overlap had passed
        writer.session.execute(update(BackendSigningKey).where(BackendSigningKey.id == first.kid)
                               .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert first.kid not in {k["kid"] for k in ring.jwks()["keys"]}
    ring.list()  # prunes
    assert first.kid not in {r.id for r in _records(kstore)}
    with kstore.read() as session:
        last = session.scalars(select(ChangeRecord).order_by(ChangeRecord.revision.desc()).limit(1)).one()
    assert (last.op, last.entity_kind, last.entity_id) == ("delete", "BACKEND_SIGNING_KEY", first.kid)


def test_rotation_refuses_an_unknown_algorithm(kstore):
    with pytest.raises(InvalidArgument):
        backend_signing_keys.rotate_backend_signing_key(
            kstore, backend_signing_keys_pb2.RotateBackendSigningKeyRequest(algorithm="HS256"), ADMIN)


def test_only_admins_of_the_default_organization_see_the_keys(kstore, acme):
    with pytest.raises(PermissionDenied):
        backend_signing_keys.list_backend_signing_keys(
            kstore, backend_signing_keys_pb2.ListBackendSigningKeysRequest(), OTHER_ADMIN)
    with pytest.raises(PermissionDenied):
        backend_signing_keys.rotate_backend_signing_key(
            kstore, backend_signing_keys_pb2.RotateBackendSigningKeyRequest(), OTHER_ADMIN)


def test_no_private_key_is_in_clear_anywhere_in_the_database_file(kstore, tmp_path):
    ring = BackendSigningKeys(kstore, kstore.config.kek)
    for algorithm in ("ES256", "RS256", "EdDSA"):
        ring.ensure_active(algorithm)
        ring.rotate(algorithm)
    pems = [r.private_key_pem for r in _records(kstore)]
    assert len(pems) == 6
    with kstore.read() as session:  # the change log holds them, sealed
        upserts = session.scalars(select(ChangeRecord).where(
            ChangeRecord.entity_kind == "BACKEND_SIGNING_KEY", ChangeRecord.op == "upsert")).all()
        assert upserts and all(outbox.open_payload(r, kstore.config) != r.payload for r in upserts)
    kstore.db.dispose()  # checkpoint: everything in the one file
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("portcullis.db"))
    assert b"PRIVATE KEY" not in raw
    for pem in pems:
        body = "".join(pem.strip().splitlines()[1:-1]).encode()
        der = serialization.load_pem_private_key(pem.encode(), password=None).private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        assert body[:40] not in raw and der[-32:] not in raw


def test_a_jwt_signed_with_the_previous_key_verifies_against_the_jwks_during_the_overlap(kstore):
    """End to end through the records: admin_api's key ring → authz_server's index and
    issuer → rotation → the JWKS still verifies the JWT signed before it."""
    from authz_server.backend_jwt.issuer import BackendJwtIssuer
    from authz_server.index.policy_index import PolicyIndex

    ring = BackendSigningKeys(kstore, kstore.config.kek)
    ring.ensure_active()
    api = create_api(kstore, backend_jwt=_config())
    revision, entities = snapshot.load(kstore)
    index = PolicyIndex.from_snapshot(entities, revision)
    now = utcnow().timestamp()
    old_token = BackendJwtIssuer().issue(index.apis[api.id], "production", None, index, now)

    ring.rotate()
    revision, entities = snapshot.load(kstore)
    rotated = PolicyIndex.from_snapshot(entities, revision)
    new_token = BackendJwtIssuer().issue(rotated.apis[api.id], "production", None, rotated, now)
    published = {key["kid"]: key for key in ring.jwks()["keys"]}
    for token in (old_token, new_token):
        kid = jwt.get_unverified_header(token)["kid"]
        claims = jwt.decode(token, jwt.PyJWK(published[kid]).key, algorithms=["ES256"], issuer="portcullis")
        assert claims["api"]["id"] == api.id
    assert jwt.get_unverified_header(old_token)["kid"] != jwt.get_unverified_header(new_token)["kid"]
