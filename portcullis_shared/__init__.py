"""Small pieces both services need to agree on: ports and settings, credential hashing."""
