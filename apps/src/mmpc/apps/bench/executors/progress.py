"""The Ray executor's progress: one live line per stage kind."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence

from tqdm.auto import tqdm

from mmpc.apps.bench.executors.base import stage_kind

STATES = ("done", "running", "queued", "failed")


class KindProgress:
    """One live line per stage kind: done / running / queued / failed (+ unavailable)."""

    def __init__(self, names: Sequence[str], enabled: bool) -> None:
        self.enabled = enabled
        self.state = dict.fromkeys(names, "queued")
        self.kinds = list(dict.fromkeys(stage_kind(n) for n in names))
        totals = Counter(stage_kind(n) for n in names)
        width = max((len(k) for k in self.kinds), default=0)
        self.bars = {
            kind: tqdm(
                total=totals[kind],
                desc=kind.ljust(width),
                position=i,
                leave=True,
                disable=not enabled,
                dynamic_ncols=True,
                file=sys.stderr,
                bar_format="{desc} {bar:16} {n_fmt}/{total_fmt} {postfix}",
            )
            for i, kind in enumerate(self.kinds)
        }
        for kind in self.kinds:
            self._refresh(kind)

    def counts(self, kind: str) -> Counter[str]:
        return Counter(s for n, s in self.state.items() if stage_kind(n) == kind)

    def line(self, kind: str) -> str:
        counts = self.counts(kind)
        shown = [f"{counts[s]} {s}" for s in STATES]
        if counts["unavailable"]:
            shown.append(f"{counts['unavailable']} unavailable")
        return ", ".join(shown)

    def _refresh(self, kind: str) -> None:
        bar = self.bars[kind]
        counts = self.counts(kind)
        bar.n = counts["done"] + counts["failed"] + counts["unavailable"]
        bar.set_postfix_str(self.line(kind), refresh=True)

    def set(self, name: str, state: str) -> None:
        if self.state[name] != state:
            self.state[name] = state
            self._refresh(stage_kind(name))

    def write(self, line: str) -> None:
        if self.enabled:
            tqdm.write(line, file=sys.stderr)
        else:
            print(line, flush=True)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        if not self.enabled:
            for kind in self.kinds:
                print(f"[ray] {kind}: {self.line(kind)}", flush=True)
