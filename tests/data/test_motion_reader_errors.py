"""HumanML3D, Babel and DeepMimic readers refuse bad files by name (issue 10, items 10-11)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxvision.data import babel
from jaxvision.data import deepmimic as dm
from jaxvision.data import humanml3d
from tests.data.refusals import refused

D = 7


# --- HumanML3D ---------------------------------------------------------------------------

def _stats(tmp_path, mean, std):
  np.save(tmp_path / 'Mean.npy', np.asarray(mean, np.float32))
  np.save(tmp_path / 'Std.npy', np.asarray(std, np.float32))


@pytest.mark.parametrize('which, value', [('Std', np.nan), ('Mean', np.inf), ('Std', -np.inf)])
def test_non_finite_statistics_are_refused(tmp_path, which, value):
  mean, std = np.zeros(D), np.ones(D)
  (std if which == 'Std' else mean)[3] = value
  _stats(tmp_path, mean, std)
  with refused(tmp_path / f'{which}.npy', 'non-finite'):
    humanml3d.read_stats(str(tmp_path))


@pytest.mark.parametrize('content', [b'', b'\x93NUMPY', None],
                         ids=['empty', 'magic_only', 'truncated'])
def test_empty_or_truncated_statistics_are_refused(tmp_path, content):
  _stats(tmp_path, np.zeros(D), np.ones(D))
  path = tmp_path / 'Std.npy'
  data = path.read_bytes()
  path.write_bytes(data[:-5] if content is None else content)
  with refused(path, 'npy'):
    humanml3d.read_stats(str(tmp_path))


def test_truncated_motion_is_refused(tmp_path):
  _stats(tmp_path, np.zeros(D), np.ones(D))
  (tmp_path / 'new_joint_vecs').mkdir()
  (tmp_path / 'texts').mkdir()
  (tmp_path / 'train.txt').write_text('m\n')
  (tmp_path / 'texts' / 'm.txt').write_text('a walk#a/DET walk/NOUN#0.0#0.0\n')
  path = tmp_path / 'new_joint_vecs' / 'm.npy'
  np.save(path, np.zeros((60, D), np.float32))
  path.write_bytes(path.read_bytes()[:-100])
  with refused(path, 'truncated'):
    humanml3d.read_examples(str(tmp_path), 'train')


@pytest.mark.parametrize('times, words', [
    ('0.0#inf', ('not finite',)),
    ('-1.0#2.0', ('non-negative',)),
    ('3.0#1.0', ('ordered',)),
    ('zero#1.0', ('not numbers',)),
], ids=['inf', 'negative', 'reversed', 'non_numeric'])
def test_bad_text_times_are_refused(tmp_path, times, words):
  (tmp_path / 'texts').mkdir()
  path = tmp_path / 'texts' / 'm.txt'
  path.write_text(f'a walk#a/DET walk/NOUN#0.0#0.0\na run#a/DET run/NOUN#{times}\n')
  with refused(f'{path}:2', *words):   # the file and its line
    humanml3d.read_texts(str(tmp_path), 'm')


def test_nan_text_time_still_means_whole_motion(tmp_path):
  (tmp_path / 'texts').mkdir()
  (tmp_path / 'texts' / 'm.txt').write_text('a walk#a/DET walk/NOUN#nan#nan\n')
  (line,) = humanml3d.read_texts(str(tmp_path), 'm')
  assert (line.start, line.end) == (0.0, 0.0)


# --- Babel -------------------------------------------------------------------------------

def _babel(tmp_path, labels, motion=None):
  (tmp_path / 'motions').mkdir(exist_ok=True)
  np.save(tmp_path / 'motions' / 's1.npy',
          np.zeros((90, D), np.float32) if motion is None else motion)
  ann = {'s1': {'babel_sid': 's1', 'dur': 3.0, 'frame_ann': {'labels': labels}}}
  path = tmp_path / 'train.json'
  path.write_text(json.dumps(ann))   # json writes float('nan') as NaN, which json reads
  return path


GOOD = {'proc_label': 'walk', 'start_t': 0.0, 'end_t': 2.0}


@pytest.mark.parametrize('label, words', [
    ({**GOOD, 'start_t': float('nan')}, ('frame label 1', 'finite')),
    ({**GOOD, 'end_t': float('inf')}, ('frame label 1', 'finite')),
    ({'proc_label': 'walk', 'end_t': 2.0}, ('frame label 1', 'missing', 'start_t')),
    ({**GOOD, 'start_t': '0.5'}, ('frame label 1', 'finite')),
    ({**GOOD, 'proc_label': 3}, ('frame label 1', 'proc_label')),
    ({**GOOD, 'start_t': 2.5}, ('frame label 1', 'start_t <= end_t')),
    ('walk', ('frame label 1', 'object')),
], ids=['nan_start', 'inf_end', 'missing_start', 'string_time', 'int_label', 'reversed',
        'not_an_object'])
def test_bad_babel_labels_are_refused(tmp_path, label, words):
  path = _babel(tmp_path, [GOOD, label])
  with refused(path, "'s1'", *words):
    babel.read_windows(str(tmp_path), 'train')


def test_babel_non_json_and_bad_motion_are_refused(tmp_path):
  path = _babel(tmp_path, [GOOD])
  path.write_text('{"s1": ')
  with refused(path, 'json'):
    babel.read_annotations(str(tmp_path), 'train')
  _babel(tmp_path, [GOOD], motion=np.full((90, D), np.nan, np.float32))
  with refused(tmp_path / 'motions' / 's1.npy', 'non-finite'):
    babel.read_windows(str(tmp_path), 'train')


# --- DeepMimic mocap ---------------------------------------------------------------------

def _clip(tmp_path, edit=None, text=None):
  with open(dm.clip_files()['walk'], encoding='utf-8') as fh:
    data = json.load(fh)
  if edit is not None:
    edit(data)
  path = tmp_path / 'clip.txt'
  path.write_text(text if text is not None else json.dumps(data))
  return str(path)


def _set(row, col, value):
  def edit(data):
    data['Frames'][row][col] = value
  return edit


def _zero_quat(start):
  def edit(data):
    data['Frames'][5][start:start + 4] = [0.0, 0.0, 0.0, 0.0]
  return edit


@pytest.mark.parametrize('edit, words', [
    (_set(3, 10, float('nan')), ('non-finite', '(3, 10)')),
    (_set(3, 1, float('inf')), ('non-finite',)),
    (_set(4, 0, -0.03), ('negative', 'key frame 4')),
    (_zero_quat(4), ('zero quaternion', 'root_rot', 'key frame 5')),
    (_zero_quat(8), ('zero quaternion', 'chest')),
    (_set(2, 0, 1e9), ('lasts', 'MAX_CLIP_SECONDS')),
    (lambda d: d.pop('Frames'), ('"Frames"',)),
    (lambda d: d['Frames'][7].pop(), ('Frames',)),
    (lambda d: d.update(Frames=d['Frames'][:1]), ('at least 2',)),
    (lambda d: d['Frames'][2].__setitem__(3, 'x'), ('Frames',)),
], ids=['nan', 'inf', 'negative_dt', 'zero_root_quat', 'zero_joint_quat', 'duration_1e9s',
        'no_frames', 'ragged', 'one_frame', 'non_numeric'])
def test_bad_mocap_is_refused(tmp_path, edit, words):
  path = _clip(tmp_path, edit)
  with refused(path, *words):
    dm.read_mocap(path)


def test_mocap_that_is_not_json_is_refused(tmp_path):
  path = _clip(tmp_path, text='{"Loop": "wrap", "Frames": [[0.03')
  with refused(path, 'json'):
    dm.read_mocap(path)


def test_resampling_is_bounded():
  frames, _ = dm.read_mocap(dm.clip_files()['walk'])
  frames = frames.copy()
  frames[0, 0] = 1e9    # what read_mocap refuses; resample alone must not allocate either
  with pytest.raises(ValueError, match='MAX_FRAMES'):
    dm.resample(frames, 20.0)
