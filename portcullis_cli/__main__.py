"""`python -m portcullis_cli`, the same as the `portcullis` console script."""

from portcullis_cli.main import console_main

console_main()
