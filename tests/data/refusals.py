"""`refused(path, *words)`: the block must raise an error whose message names the file."""

from __future__ import annotations

import contextlib

import pytest


@contextlib.contextmanager
def refused(path, *words, exc=ValueError):
  """Asserts the block raises `exc` naming `path` and containing every one of `words`."""
  with pytest.raises(exc) as info:
    yield info
  msg = str(info.value)
  assert str(path) in msg, f'the error does not name {path}: {type(info.value).__name__}: {msg}'
  for w in words:
    assert w.lower() in msg.lower(), f'the error does not say {w!r}: {msg}'
