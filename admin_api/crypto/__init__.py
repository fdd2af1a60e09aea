"""Cryptography of admin_api: the key-encryption key and the resident signing keys."""
