"""The `portcullis` command line: the admin REST API as nouns and verbs, and declarative
configuration (apply, diff, dump) in `apiVersion: portcullis/v1` YAML files."""
