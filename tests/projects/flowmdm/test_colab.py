"""The FlowMDM colab runs top to bottom (tiny settings) and has no stored outputs."""

import os

import nbformat

from tests import helpers

NOTEBOOK = os.path.join(helpers.REPO, 'colabs', 'flowmdm.ipynb')


def test_colab_runs(tmp_path, monkeypatch):
  nb = nbformat.read(NOTEBOOK, as_version=4)
  assert all(not c.get('outputs') for c in nb.cells if c.cell_type == 'code')
  monkeypatch.setenv('JAXVISION_COLAB_TINY', '1')
  monkeypatch.setenv('JAXVISION_COLAB_WORKDIR', str(tmp_path / 'run'))
  monkeypatch.setenv('JAXVISION_REPO', helpers.REPO)
  monkeypatch.setenv('MPLBACKEND', 'Agg')
  namespace = {}
  for cell in nb.cells:
    if cell.cell_type == 'code':
      exec(compile(cell.source, 'flowmdm.ipynb', 'exec'), namespace)  # pylint: disable=exec-used
  assert os.path.getsize(tmp_path / 'run' / 'walk_jump_kick.gif') > 1000
  assert set(namespace['curves']) == {'BPE (s=60)', 'absolute only (s=-1)'}
