"""Matching replayed requests to recorded calls: root order, sub-call hash, then position in the cell."""

from __future__ import annotations

import pytest

from rlmlab.replay.book import NoRecordedReply, ReplayBook
from rlmlab.replay.cassette import Cassette, Header, LLMCall, request_hash


def _sub(seq, prompt, cell, batch_id=None, batch_index=None):
    return LLMCall(seq=seq, role="sub", depth=1, model="m", prompt=prompt, request_hash=request_hash(prompt=prompt),
                   response=f"answer to {prompt}", cell=cell, iteration=cell, batch_id=batch_id, batch_index=batch_index)


def _root(seq, text):
    messages = [{"role": "user", "content": text}]
    return LLMCall(seq=seq, role="root", depth=0, model="r", messages=messages,
                   request_hash=request_hash(messages=messages), response=f"reply {seq}")


def _book():
    calls = [
        _root(1, "q"),
        # cell 0: a batch recorded out of order (slot 1 finished first)
        _sub(3, "chunk B", 0, "b1", 1),
        _sub(2, "chunk A", 0, "b1", 0),
        _root(4, "q2"),
        _sub(5, "same", 1),
        _sub(6, "same", 1),
    ]
    return ReplayBook(Cassette(header=Header(query="q"), calls=calls))


def test_roots_in_order_and_request_differences_noted():
    book = _book()
    assert book.root(request_hash(messages=[{"role": "user", "content": "q"}])).response == "reply 1"
    assert book.divergences == []
    assert book.root("other").response == "reply 4"
    assert [d.kind for d in book.divergences] == ["root_request"]
    with pytest.raises(NoRecordedReply):
        book.root("x")
    assert book.divergences[-1].kind == "extra_root"


def test_sub_calls_by_hash_then_by_position():
    book = _book()
    # Same prompts asked in another order: the hash wins, no divergence.
    assert book.sub(request_hash(prompt="chunk B"), 0).response == "answer to chunk B"
    assert book.sub(request_hash(prompt="chunk A"), 0).response == "answer to chunk A"
    # Repeated identical prompts get their recorded answers in turn.
    assert book.sub(request_hash(prompt="same"), 1).seq == 5
    assert book.sub(request_hash(prompt="same"), 1).seq == 6
    assert book.divergences == []
    book.close()
    assert book.divergences == []


def test_changed_prompts_fall_back_to_batch_position_and_are_listed():
    book = _book()
    assert book.sub(request_hash(prompt="chunk B'"), 0, "b1", 1).response == "answer to chunk B"
    assert book.sub(request_hash(prompt="chunk A'"), 0, "b7", 0).response == "answer to chunk A"
    assert [d.kind for d in book.divergences] == ["sub_by_position", "sub_by_position"]
    # Without a batch index: the k-th call of the cell, in asking order.
    assert book.sub(request_hash(prompt="different"), 1).seq == 5
    with pytest.raises(NoRecordedReply):
        book.sub(request_hash(prompt="x"), 1)
        book.sub(request_hash(prompt="y"), 1)
    assert book.divergences[-1].kind == "sub_unanswered"


def test_unused_recorded_calls_are_listed():
    book = _book()
    book.sub(request_hash(prompt="chunk A"), 0)
    book.close()
    assert book.divergences[-1].kind == "unused_sub_calls"
    assert "3 recorded sub-calls" in book.divergences[-1].detail


def test_two_batches_in_one_cell_are_told_apart_by_batch_id():
    calls = [_sub(1, "p0", 2, "b2", 0), _sub(2, "p1", 2, "b2", 1), _sub(3, "q0", 2, "b3", 0), _sub(4, "q1", 2, "b3", 1)]
    book = ReplayBook(Cassette(header=Header(query="q"), calls=calls))
    assert book.sub(request_hash(prompt="q0 changed"), 2, "b3", 0).seq == 3
    assert book.sub(request_hash(prompt="p0 changed"), 2, "b2", 0).seq == 1
    # A batch the recording never had: its position in the batch still picks a call of the cell.
    assert book.sub(request_hash(prompt="new"), 2, "b9", 1).seq == 2
