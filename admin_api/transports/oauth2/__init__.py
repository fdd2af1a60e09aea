"""The resident key manager's OAuth2 surface: authlib's authorization server with our
grants (`server`), its client adapter (`clients`), discovery metadata (`metadata`), and
the HTTP endpoints mounted on admin_api's REST port (`routes`). Token and signing-key
storage lives in `admin_api.oauth`."""
