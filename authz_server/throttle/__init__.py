"""Throttling: fixed-window counters shared by every worker of one authz_server (a
shared-memory table), and optionally by every replica (quota leased from Redis)."""
