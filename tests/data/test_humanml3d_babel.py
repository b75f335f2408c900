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
from jaxvision.projects.flowmdm import smpl_features as sf


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
  chains = babel.upstream_windows(segs, max_frames=130)
  assert [[s[2] for s in c] for c in chains] == [['a', 'b'], ['b', 'c'], ['c', 'd']]
  with pytest.raises(FileNotFoundError, match='train.json'):
    babel.read_windows('/nonexistent', 'train')


# Expected windows below were worked out by hand from upstream's `extract_frame_labels`
# (babel_flowmdm.py at e81c67f): b is 'after' a iff a.start < b.start <= a.end < b.end;
# recursion from every segment; a transition not at frame 0 with segments on both sides
# pairs every segment before it with every segment after it; overflow drops the last link.
W, T, S, R = (0, 50, 'walk'), (45, 70, 'transition'), (65, 120, 'sit'), (66, 100, 'run')


def test_babel_windows_branch_through_a_transition():
  # w -> T -> {s, r}: both branches, the transition absorbed; w alone gives nothing.
  assert babel.upstream_windows([W, T, S, R]) == [[W, S], [W, R]]
  assert babel.make_consecutive([W, S]) == [(0, 57, 'walk'), (58, 120, 'sit')]


def test_babel_windows_keep_a_frame0_transition_and_need_links():
  t0, a, b = (0, 20, 'transition'), (15, 80, 'stand'), (80, 130, 'wave')
  assert babel.upstream_windows([b, a, t0]) == [[t0, a, b], [a, b]]
  # Segments that neither overlap nor are linked by a transition never chain, and a lone
  # segment makes no window.
  assert babel.upstream_windows([(0, 60, 'x'), (70, 130, 'y')]) == []
  assert babel.upstream_windows([(0, 60, 'x')]) == []


def test_babel_windows_overflow_and_ten_segment_cut():
  long, short = (0, 190, 'long'), (185, 240, 'short')
  assert babel.upstream_windows([long, short]) == [[long]]     # the link overflows 200
  lone = [(0, 190, 'transition'), (185, 240, 'x')]     # a frame-0 transition overflowing
  assert babel.upstream_windows(lone) == [[lone[0]]]


def test_babel_reader_drops_lone_transition_windows(tmp_path):
  labels = [{'proc_label': 'transition', 'start_t': 0.0, 'end_t': 190 / 30},
            {'proc_label': 'x', 'start_t': 185 / 30, 'end_t': 8.0},
            {'proc_label': 'a', 'start_t': 8.0, 'end_t': 8.5},
            {'proc_label': 'b', 'start_t': 8.5, 'end_t': 10.0}]
  _write_babel(tmp_path, np.zeros((300, 4), np.float32), labels)
  windows = babel.read_windows(str(tmp_path), 'train', min_frames=1, features='sequence')
  # Upstream's list: [transition] (dropped), [x, a, b], [a, b]; names keep its indices.
  assert [(w.name, w.texts) for w in windows] == [('s1-1', ('x', 'a', 'b')),
                                                  ('s1-2', ('a', 'b'))]


def test_babel_windows_cut_at_ten_segments():
  segs = [(10 * i, 10 * i + 10, f's{i}') for i in range(12)]
  got = babel.upstream_windows(segs)
  assert got == [segs[i:i + 10] for i in range(11)]


def test_babel_labels_spelling_and_repeated_intervals():
  ann = {'frame_ann': {'labels': [
      {'proc_label': ' bodyshake  sitdown', 'start_t': 0.0, 'end_t': 2.0},
      {'proc_label': 'walk', 'start_t': 1.0, 'end_t': 3.0},
      {'proc_label': 'standup', 'start_t': 1.0, 'end_t': 3.0}]}}   # same interval: last wins
  segs = babel.frame_segments(ann, 30.0, 1000)
  assert segs == [(0, 60, 'body shake sit down'), (30, 90, 'walk'), (30, 90, 'stand up')]
  assert babel.upstream_windows(segs) == [[(0, 60, 'body shake sit down'),
                                           (30, 90, 'stand up')]]


def _pure_yaw_sequence(rng, n, yaw0):
  poses = rng.normal(scale=0.3, size=(n, 66))
  poses[:, :3] = 0
  poses[:, 2] = yaw0 + np.cumsum(rng.normal(scale=0.05, size=n))   # upright root, z up
  trans = np.cumsum(rng.normal(scale=0.02, size=(n, 3)), axis=0) + [0, 0, 0.9]
  return poses, trans


def test_babel_window_features_are_computed_per_window(tmp_path):
  rng = np.random.default_rng(0)
  poses, trans = _pure_yaw_sequence(rng, 150, 0.7)
  (tmp_path / 'motions').mkdir()
  np.savez(tmp_path / 'motions' / 's1.npz', poses=poses, trans=trans)
  labels = [{'proc_label': 'a', 'start_t': 0.0, 'end_t': 2.0},
            {'proc_label': 'b', 'start_t': 2.0, 'end_t': 5.0}]
  (tmp_path / 'train.json').write_text(json.dumps({'s1': {'frame_ann': {'labels': labels}}}))
  win = babel.read_windows(str(tmp_path), 'train', features='window',
                           featurize=sf.window_features)
  assert [(w.name, w.texts, w.lengths) for w in win] == [('s1-0', ('a', 'b'), (61, 89))]
  # Rotating the whole sequence about the vertical leaves window features unchanged
  # (upright roots), and the window's first velocity is 0.
  rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
  poses2 = poses.copy()
  poses2[:, 2] += np.pi / 2
  np.savez(tmp_path / 'motions' / 's1.npz', poses=poses2, trans=trans @ rot.T)
  win2 = babel.read_windows(str(tmp_path), 'train', features='window',
                           featurize=sf.window_features)
  np.testing.assert_allclose(win2[0].motion, win[0].motion, atol=1e-5)
  np.testing.assert_array_equal(win[0].motion[0, 1:3], 0)
  # A window starting later is canonicalised to ITS first frame, not the sequence's.
  seq = sf.amass_to_features(poses, trans, source_fps=30.0)
  late = sf.window_features(poses, trans, 40, 120)
  np.testing.assert_allclose(late, sf.amass_to_features(poses[40:120], trans[40:120],
                                                        source_fps=30.0), atol=1e-6)
  assert np.abs(late[1:] - seq[41:120]).max() > 1e-2
