"""Which recorded reply answers which replayed request, and every place the replay diverged.

Root replies are served in recorded order: the root model drives the run, so its n-th
reply is the n-th reply whatever it was asked. Sub-calls are answered by request hash
(the same prompt gets the same answer, wherever it is asked), and where the prompt text
differs (another context, another chunking) by position within the top-level REPL cell
that asks: the k-th call of a cell in a batch gets the recorded call of that batch
position (the same batch where it can tell), otherwise the k-th recorded call of that cell. Each fallback, each request with
no recorded answer, and each recorded answer left unused is a `Divergence`.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from dataclasses import dataclass

from .cassette import Cassette, LLMCall


@dataclass(frozen=True)
class Divergence:
    """One place where the replay did not follow the recording exactly."""

    kind: str  # root_request extra_root sub_by_position sub_unanswered unused_sub_calls cell_output cell_count answer outcome
    iteration: int | None
    cell: int | None
    detail: str


class NoRecordedReply(LookupError):
    """The cassette has no reply for this request (the engine turns it into an "Error: ..." string)."""


class ReplayBook:
    """Thread-safe matcher of replayed requests to recorded calls."""

    def __init__(self, cassette: Cassette, *, compare_root_requests: bool = True):
        self.cassette = cassette
        self.compare_root_requests = compare_root_requests
        self._roots = cassette.root_calls
        self._served_roots = 0
        self._by_cell: dict[int | None, list[LLMCall]] = defaultdict(list)
        self._by_hash: dict[str, deque[LLMCall]] = defaultdict(deque)
        for call in _in_asking_order(cassette.sub_calls):
            self._by_cell[call.cell].append(call)
            self._by_hash[call.request_hash].append(call)
        self._used: set[int] = set()
        self._position: dict[int | None, int] = defaultdict(int)
        self._lock = threading.Lock()
        self.divergences: list[Divergence] = []

    # -- root ------------------------------------------------------------------------------
    @property
    def root_iteration(self) -> int:
        """How many root replies were served: the root iteration now running is this minus one."""
        return self._served_roots

    def root(self, request_hash: str) -> LLMCall:
        with self._lock:
            index = self._served_roots
            self._served_roots += 1
            if index >= len(self._roots):
                self.divergences.append(Divergence("extra_root", index, None,
                                                   f"the replay asked for root reply {index + 1}; the recording has {len(self._roots)}"))
                raise NoRecordedReply(f"the recording has only {len(self._roots)} root replies")
            call = self._roots[index]
            if self.compare_root_requests and call.request_hash != request_hash:
                self.divergences.append(Divergence("root_request", index, None,
                                                   "the root model was asked something else than when recorded "
                                                   "(an earlier cell printed other output); its recorded reply is served"))
            return call

    # -- sub-calls ---------------------------------------------------------------------------
    def sub(self, request_hash: str, cell: int | None, batch_id: str | None = None, batch_index: int | None = None) -> LLMCall:
        """The recorded answer for a sub-call made in top-level cell `cell`.

        Batch ids are numbered per run in the order batches start, so while the replay
        follows the recording, its batch "b3" is the recording's "b3".
        """
        with self._lock:
            position = self._position[cell]
            self._position[cell] += 1
            same = self._take_by_hash(request_hash, cell)
            if same is not None:
                return same
            candidates = [c for c in self._by_cell.get(cell, ()) if c.seq not in self._used]
            chosen = None
            if batch_index is not None:
                chosen = next((c for c in candidates if (c.batch_id, c.batch_index) == (batch_id, batch_index)), None) \
                    or next((c for c in candidates if c.batch_index == batch_index), None)
            if chosen is None:
                recorded = self._by_cell.get(cell, [])
                at = recorded[position] if position < len(recorded) else None
                chosen = at if at is not None and at.seq not in self._used else (candidates[0] if candidates else None)
            if chosen is None:
                self.divergences.append(Divergence("sub_unanswered", None, cell,
                                                   f"sub-call {position + 1} of cell {cell} has no recorded answer left"))
                raise NoRecordedReply(f"no recorded sub-call answer left for cell {cell}")
            self._used.add(chosen.seq)
            self.divergences.append(Divergence("sub_by_position", chosen.iteration, cell,
                                               f"sub-call {position + 1} of cell {cell}: prompt differs from the recording, "
                                               f"answered with recorded call #{chosen.seq}"))
            return chosen

    def _take_by_hash(self, request_hash: str, cell: int | None) -> LLMCall | None:
        """An unused call with this hash, preferring one recorded in the same cell."""
        queue = self._by_hash.get(request_hash)
        if not queue:
            return None
        for call in queue:
            if call.seq not in self._used and call.cell == cell:
                break
        else:
            call = next((c for c in queue if c.seq not in self._used), None)
            if call is None:
                return None
        self._used.add(call.seq)
        return call

    # -- the end ---------------------------------------------------------------------------------
    def unused_sub_calls(self) -> list[LLMCall]:
        return [c for c in self.cassette.sub_calls if c.seq not in self._used]

    def close(self) -> None:
        """Note recorded sub-calls that the replay never asked for."""
        unused = self.unused_sub_calls()
        if unused:
            cells = sorted({c.cell for c in unused if c.cell is not None})
            self.divergences.append(Divergence("unused_sub_calls", None, None,
                                               f"{len(unused)} recorded sub-calls were never asked for (cells {cells})"))


def _in_asking_order(calls: list[LLMCall]) -> list[LLMCall]:
    """Calls in the order they were asked: batches by their first call, then by batch position."""
    first_of_batch: dict[str, int] = {}
    for call in calls:
        if call.batch_id is not None:
            first_of_batch[call.batch_id] = min(first_of_batch.get(call.batch_id, call.seq), call.seq)

    def key(call: LLMCall) -> tuple:
        if call.batch_id is None:
            return (call.seq, 0, call.seq)
        index = call.batch_index if call.batch_index is not None else call.seq
        return (first_of_batch[call.batch_id], index, call.seq)

    return sorted(calls, key=key)
