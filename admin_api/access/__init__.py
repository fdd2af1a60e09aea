"""Who is calling: the Caller (`caller`), how a credential becomes one (`auth` for stored
admin and sync credentials, `user_auth` for the resident key manager's access tokens), and
what each role may call (`permissions`)."""
