"""Many workers' snapshots -> one set of figures for one scrape target.

Counters are summed over the workers. A worker that restarts starts again from zero: its
last figures before that are carried over (by pid), so the sums never go down and
Prometheus sees no false counter reset. Gauges (revision, staleness, ...) stay per worker.

The `api` label is bounded: the first `max_apis` distinct APIs seen keep their own label
for the life of the process, every later one is counted under `api="_other"` (sticky, so
counters stay monotonic). 10,000 APIs would otherwise mean up to 10,000 x reasons x
credentials series per scrape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from authz_server.metrics.snapshot import NO_API, Snapshot

OTHER_API = "_other"
DECISIONS = "portcullis_decisions_total"
API_LABEL_POSITION = 2   # (outcome, reason, api, credential)

Key = tuple[str, ...]


@dataclass
class Figures:
    counters: dict[str, dict[Key, float]] = field(default_factory=dict)
    histograms: dict[str, dict[Key, list[Any]]] = field(default_factory=dict)   # [counts, sum]
    gauges: dict[str, dict[str, float]] = field(default_factory=dict)           # name -> worker -> value
    workers_up: dict[str, bool] = field(default_factory=dict)

    def add(self, snapshot: Snapshot) -> None:
        for name, series in snapshot.get("counters", {}).items():
            family = self.counters.setdefault(name, {})
            for labels, value in series:
                key = tuple(labels)
                family[key] = family.get(key, 0) + value
        for name, series in snapshot.get("histograms", {}).items():
            family_h = self.histograms.setdefault(name, {})
            for labels, counts, total in series:
                key = tuple(labels)
                known = family_h.get(key)
                if known is None:
                    family_h[key] = [list(counts), total]
                else:
                    known[0] = [a + b for a, b in zip(known[0], counts)]
                    known[1] += total


class Merger:
    def __init__(self, max_apis: int = 200) -> None:
        self.max_apis = max_apis
        self._last: dict[int, Snapshot] = {}       # worker -> its last snapshot
        self._carried = Figures()                  # earlier incarnations of restarted workers
        self._admitted: set[str] = {NO_API}

    def merge(self, answers: Iterable[tuple[int, Snapshot | None]]) -> Figures:
        """`answers`: (worker, its snapshot now, or None when it did not answer)."""
        figures = Figures()
        for worker, snapshot in answers:
            if snapshot is not None:
                previous = self._last.get(worker)
                if previous is not None and previous.get("pid") != snapshot.get("pid"):
                    self._carried.add(previous)   # the old process's final figures
                self._last[worker] = snapshot
                for name, value in snapshot.get("gauges", {}).items():
                    figures.gauges.setdefault(name, {})[str(worker)] = value
            figures.workers_up[str(worker)] = snapshot is not None
        for snapshot in self._last.values():
            figures.add(snapshot)
        for name, family in self._carried.counters.items():
            target = figures.counters.setdefault(name, {})
            for key, value in family.items():
                target[key] = target.get(key, 0) + value
        for name, family_h in self._carried.histograms.items():
            target_h = figures.histograms.setdefault(name, {})
            for key, (counts, total) in family_h.items():
                known = target_h.get(key)
                target_h[key] = [list(counts), total] if known is None else [
                    [a + b for a, b in zip(known[0], counts)], known[1] + total]
        self._bound_apis(figures)
        return figures

    def _bound_apis(self, figures: Figures) -> None:
        family = figures.counters.get(DECISIONS)
        if not family:
            return
        # Admit in a stable order (most decisions first) until the bound is reached.
        for key in sorted(family, key=lambda k: -family[k]):
            api = key[API_LABEL_POSITION]
            if api not in self._admitted and len(self._admitted) - 1 < self.max_apis:
                self._admitted.add(api)
        bounded: dict[Key, float] = {}
        for key, value in family.items():
            if key[API_LABEL_POSITION] not in self._admitted:
                key = key[:API_LABEL_POSITION] + (OTHER_API,) + key[API_LABEL_POSITION + 1:]
            bounded[key] = bounded.get(key, 0) + value
        figures.counters[DECISIONS] = bounded
