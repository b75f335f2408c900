"""FocusMAE pre-training through the binary on the real DICOM cine: a clip is overfit."""

import importlib.util
import os

import numpy as np
import pytest

pytest.importorskip('pydicom')

from jaxvision import train  # pylint: disable=g-import-not-at-top
from jaxvision.projects import focusmae  # pylint: disable=g-import-not-at-top
from jaxvision.data import dicom_video  # pylint: disable=g-import-not-at-top


CONFIG = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'experiments', 'focusmae',
                      'tiny.py')


def load_config_file(arg):
  spec = importlib.util.spec_from_file_location('focusmae_tiny_config', CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


@pytest.fixture(scope='module', autouse=True)
def _needs_cine():
  try:
    dicom_video.embedded_path('echo_cine')
  except FileNotFoundError as e:
    pytest.skip(str(e))


def test_source_clips_are_cine_frames():
  cfg = load_config_file('frames=12')
  src = focusmae.make_source(cfg)
  # windows of 4 frames at rate 3 span 10 frames; starts 0 and 2 fit in 12 frames
  assert len(src) == 2
  ex = src[1]
  assert ex['video'].shape == (4, 48, 64, 3) and ex['video'].dtype == np.float32
  full = focusmae.data.load_cine(dicom_video.embedded_path('echo_cine'), (48, 64), 12)
  np.testing.assert_array_equal(ex['video'], full[2:12:3])
  assert 0 <= ex['video'].min() and ex['video'].max() <= 1 and not ex['box_valid'].any()


def test_clip_boxes_from_detector_json(tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'boxes.json'
  path.write_text(json.dumps({'results': [
      {'image_id': 'color3d_jpeg_baseline_2', 'Boxes': [[160, 120, 320, 360]],
       'Scores': [0.9]}]}))
  cfg = load_config_file('frames=12')
  cfg.input.box_json = str(path)
  src = focusmae.make_source(cfg)
  first, second = src[0], src[1]          # clips start at frames 0 and 2
  assert not first['box_valid'].any()
  assert second['box_valid'].all()
  # 480 x 640 -> 48 x 64: both axes scale by 1/10
  np.testing.assert_allclose(second['boxes'][0], [16, 12, 32, 36])


def test_pretraining_overfits_one_clip(tmp_path):
  cfg = load_config_file('steps=200,clips=1,frames=10')
  cfg.log_every = 50
  out = train.train(cfg, str(tmp_path / 'run'))
  losses = [out['train'][s]['loss'] for s in (50, 100, 150, 200)]
  assert all(np.isfinite(losses))
  assert losses[0] < 1.0                       # below the predict-zero loss of ~1
  assert losses[-1] < 0.3 * losses[0], losses  # the clip is memorised
