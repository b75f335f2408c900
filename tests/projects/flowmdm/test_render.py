"""GIF rendering of a real clip, and the composition-file command."""

import numpy as np
import pytest
from PIL import Image

from jaxvision.data import deepmimic
from jaxvision.data import motion_representation as mr
from jaxvision.projects.flowmdm import render


def test_render_gif_of_a_real_clip(tmp_path):
  joints = deepmimic.clip_positions('kick')[:12]
  path = render.render_gif(joints, render.CHAINS[18], str(tmp_path / 'kick.gif'),
                           titles=render.segment_titles(['a person kicks'], [12]))
  with Image.open(path) as im:
    assert im.n_frames == 12
  with pytest.raises(ValueError, match='NaN'):
    render.render_gif(np.full((3, 18, 3), np.nan), render.CHAINS[18], str(tmp_path / 'x.gif'))


def test_render_command_reads_the_evaluator_file(tmp_path):
  feats = [mr.extract_features(deepmimic.clip_positions(c), deepmimic.skeleton())[0][:8]
           for c in ('walk', 'jump')]
  np.savez(tmp_path / 'compose_compositions.npz',
           features=np.concatenate(feats)[None].astype(np.float32),
           lengths=np.array([[8, 8, 0]]), texts=np.array(['a person walks | a person jumps']))
  assert render.main(['--workdir', str(tmp_path), '--index', '0']) == 0
  with Image.open(tmp_path / 'composition_0.gif') as im:
    assert im.n_frames == 16
