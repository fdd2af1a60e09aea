"""Usage per application and API: counted per hour in each deciding process
(`counter.py`) and reported to admin_api over PolicySync (`reporter.py`), which sums the
processes' reports (admin_api.services.usage)."""
