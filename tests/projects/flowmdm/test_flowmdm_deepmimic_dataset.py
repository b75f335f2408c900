"""FlowMDM's embedded dataset (jaxvision.projects.flowmdm.deepmimic_dataset): the
DeepMimic clips written in the HumanML3D layout and read back by the real reader."""

import os

import numpy as np
import pytest

from jaxvision.data import deepmimic
from jaxvision.data import humanml3d
from jaxvision.data import motion_representation as mr
from jaxvision.projects.flowmdm import deepmimic_dataset as dd


@pytest.fixture(scope='module')
def layout(tmp_path_factory):
  return dd.ensure_layout(str(tmp_path_factory.mktemp('cache')))


def test_embedded_dataset_is_written_in_the_humanml3d_layout(layout):
  for sub in ('new_joint_vecs', 'new_joints', 'texts'):
    assert len(os.listdir(os.path.join(layout, sub))) == 40
  for split in ('train', 'val', 'test'):
    assert len(humanml3d.read_split(layout, split)) == 40
  lines = open(os.path.join(layout, 'texts', '000014.txt')).read().splitlines()   # walk
  assert lines[0] == 'a person walks forward#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0'
  mirrored = humanml3d.read_texts(layout, 'M000015')   # mirror of the left turn
  assert 'right' in mirrored[0].caption and 'left' not in mirrored[0].caption


def test_reader_returns_the_features_that_decode_to_the_clip(layout):
  examples = {e.name: e for e in humanml3d.read_examples(layout, 'train', min_length=10)}
  assert len(examples) == 40
  walk = examples['000014']
  positions = deepmimic.clip_positions('walk')
  _, canonical = mr.extract_features(positions, deepmimic.skeleton())
  np.testing.assert_allclose(mr.recover_from_ric(walk.motion.astype(np.float64), 18),
                             canonical[:-1], atol=1e-5)   # stored in float32
  assert len(walk.texts) == 3


def test_normalization_stats_average_std_within_blocks(layout):
  mean, std = humanml3d.read_stats(layout)
  examples = humanml3d.read_examples(layout, 'train', min_length=10)
  data = np.concatenate([e.motion for e in examples]).astype(np.float64)
  np.testing.assert_allclose(mean, data.mean(0), rtol=1e-5, atol=1e-6)
  sl = mr.feature_slices(18)
  for name in ('ric', 'rot6d', 'local_velocity', 'foot_contact'):
    block = std[sl[name]]
    np.testing.assert_allclose(block, data[:, sl[name]].std(0).mean(), rtol=1e-5)


def test_unknown_caption_words_are_refused():
  with pytest.raises(KeyError, match='lexicon'):
    dd.tokenize('a person moonwalks')
