"""BlockBuilder keeps its size as it goes and refuses words that do not fit, appending nothing."""

from __future__ import annotations

import struct

import pytest

from memhil.timeline import format as fmt


def _add(b, stack=(), lrs=(0x08000101,)):
    b.add(1, 10, 1, 0, 2, 0, 0x20000100, 16, 32, 0, stack, lrs)


@pytest.mark.parametrize("width", [4, 8])
def test_nbytes_equals_the_body_length(width):
    b = fmt.BlockBuilder(width)
    assert b.nbytes == len(b.body())
    for i in range(5):
        _add(b, stack=tuple(range(0x08000001, 0x08000001 + i)))
        assert b.nbytes == len(b.body())
    b.clear()
    assert b.nbytes == len(b.body()) and b.count == 0


def test_a_word_too_wide_is_refused_and_nothing_appended():
    b = fmt.BlockBuilder(4)
    _add(b)
    before = (b.count, b.nbytes, bytes(b.entries), list(b.words))
    for bad in ((1 << 32,), (-1,)):
        with pytest.raises(struct.error):
            _add(b, lrs=(0x08000101, *bad))
    assert (b.count, b.nbytes, bytes(b.entries), list(b.words)) == before
    _add(fmt.BlockBuilder(8), lrs=(1 << 32,))  # fits 8-byte words
