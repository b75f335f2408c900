"""One feature cache (tiny digits ViT backbone) shared by the FroFA tests of a session."""

import pytest


@pytest.fixture(scope='session')
def frofa_cache_root(tmp_path_factory):
  return str(tmp_path_factory.mktemp('frofa_cache'))
