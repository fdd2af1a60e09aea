"""authz_server's Prometheus metrics.

Counting is plain Python ints in each worker process (`recorder`), read at scrape time:
prometheus-client's own counters cost 2.2 µs per decision in-process and 4.0 µs in its
multiprocess mode (mmap files) against 0.19 µs for a dict increment (bench/metrics_cost.py),
and the native front end decides inline on its event loop. The supervisor (or a single
process) serves `/metrics` and asks each worker for its figures over a socket pair
(`channel`), merging them (`merge`) into one scrape target (`exposition`).
"""
