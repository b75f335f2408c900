"""The FlowMDM colab runs top to bottom (tiny settings) and has no stored outputs."""

import os


from tests import helpers

def test_colab_runs(tmp_path, monkeypatch):
  monkeypatch.setenv('JAXVISION_COLAB_TINY', '1')
  monkeypatch.setenv('JAXVISION_COLAB_WORKDIR', str(tmp_path / 'run'))
  monkeypatch.setenv('JAXVISION_REPO', helpers.REPO)
  monkeypatch.setenv('MPLBACKEND', 'Agg')
  namespace = helpers.run_colab('flowmdm')
  assert os.path.getsize(tmp_path / 'run' / 'walk_jump_kick.gif') > 1000
  assert set(namespace['curves']) == {'BPE (s=60)', 'absolute only (s=-1)'}
