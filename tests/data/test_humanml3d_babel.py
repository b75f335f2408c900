"""jaxvision.data.humanml3d and .babel: the HumanML3D layout and Babel-style windows,
written, read back, the real formats' rules (the embedded DeepMimic dataset built in
that layout is tested in tests/projects/flowmdm/test_flowmdm_deepmimic_dataset.py)."""

import json

import numpy as np
import pytest

from jaxvision.data import babel
from jaxvision.data import deepmimic
from jaxvision.data import humanml3d
from jaxvision.data import motion_representation as mr


def test_text_ranges_become_their_own_examples(tmp_path):
  motion = np.arange(60 * 263, dtype=np.float32).reshape(60, 263)
  texts = {'000001': [humanml3d.TextLine('a person walks', ('a/DET',)),
                      humanml3d.TextLine('a person stops', ('a/DET',), 0.5, 2.5)]}
  humanml3d.write_layout(str(tmp_path), {'000001': motion}, texts, {'train': ['000001']},
                         mean=np.zeros(263), std=np.ones(263))
  ex = humanml3d.read_examples(str(tmp_path), 'train', min_length=10)
  by_name = {e.name: e for e in ex}
  np.testing.assert_array_equal(by_name['000001@0.5-2.5'].motion, motion[10:50])
  assert by_name['000001'].texts[0].caption == 'a person walks'
  with pytest.raises(ValueError, match='no train examples'):
    humanml3d.read_examples(str(tmp_path), 'train', min_length=100)


def test_malformed_files_are_named(tmp_path):
  (tmp_path / 'texts').mkdir()
  (tmp_path / 'texts' / 'x.txt').write_text('only a caption\n')
  with pytest.raises(ValueError, match='4 #-separated fields'):
    humanml3d.read_texts(str(tmp_path), 'x')
  with pytest.raises(FileNotFoundError, match='split file'):
    humanml3d.read_split(str(tmp_path), 'train')
  (tmp_path / 'train.txt').write_text('missing\n')
  with pytest.raises(FileNotFoundError, match='missing.npy'):
    humanml3d.read_examples(str(tmp_path), 'train')


def test_make_consecutive_splits_gaps_and_overlaps():
  # A gap of 10 frames (a transition) is shared, an overlap of 4 frames too.
  assert babel.make_consecutive([(0, 30, 'a'), (40, 80, 'b'), (76, 100, 'c')]) == [
      (0, 35, 'a'), (36, 78, 'b'), (79, 100, 'c')]


def _write_babel(tmp_path, motion, labels):
  (tmp_path / 'motions').mkdir(exist_ok=True)
  np.save(tmp_path / 'motions' / 's1.npy', motion)
  ann = {'s1': {'babel_sid': 's1', 'dur': len(motion) / 30.0,
                'frame_ann': {'labels': labels}, 'seq_ann': {'labels': []}},
         's2': {'babel_sid': 's2', 'frame_ann': None, 'seq_ann': {'labels': []}}}
  np.save(tmp_path / 'motions' / 's2.npy', motion)
  (tmp_path / 'train.json').write_text(json.dumps(ann))


def test_babel_windows_over_real_motion(tmp_path):
  # Real getting-up motion, labelled by the pelvis height: lying, transition, standing.
  feats, _ = mr.extract_features(deepmimic.clip_positions('getup_faceup', fps=30.0),
                                 deepmimic.skeleton())
  height = feats[:, 3]
  up = int(np.argmax(height > 0.5 * height.max()))
  labels = [{'proc_label': 'lie on back', 'start_t': 0.0, 'end_t': (up - 10) / 30},
            {'proc_label': 'transition', 'start_t': (up - 10) / 30, 'end_t': (up + 10) / 30},
            {'proc_label': 'stand up', 'start_t': (up + 10) / 30, 'end_t': len(feats) / 30}]
  _write_babel(tmp_path, feats, labels)
  windows = babel.read_windows(str(tmp_path), 'train', fps=30.0, min_frames=20)
  assert len(windows) == 1            # s2 has no frame labels and is skipped
  w = windows[0]
  assert w.texts == ('lie on back', 'stand up')
  assert sum(w.lengths) == len(w.motion)
  # The transition's frames are split between the two actions.
  assert abs(w.lengths[0] - up) <= 1
  np.testing.assert_allclose(w.motion, feats[:len(w.motion)], rtol=1e-6, atol=1e-7)  # float32


def test_babel_windows_respect_the_frame_limit():
  segs = [(0, 60, 'a'), (60, 120, 'b'), (120, 180, 'c'), (180, 240, 'd')]
  chains = babel.windows_of_sequence(segs, max_frames=130)
  assert [[s[2] for s in c] for c in chains] == [['a', 'b'], ['b', 'c'], ['c', 'd']]
  with pytest.raises(FileNotFoundError, match='train.json'):
    babel.read_windows('/nonexistent', 'train')
