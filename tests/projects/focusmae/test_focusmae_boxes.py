"""Upstream detector JSON (boxes.py): parsing, score threshold, padding, refusals."""

import json

import numpy as np
import pytest

from jaxvision.projects.focusmae import boxes as boxes_lib
from tests.data.refusals import refused


def _write(tmp_path, doc, name='boxes.json'):
  p = tmp_path / name
  p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
  return p


def test_read_threshold_and_pad(tmp_path):
  doc = {'results': [
      {'image_id': 'vid_07_0', 'Boxes': [[10, 20, 50, 60], [0, 0, 5, 5], [30, 30, 90, 80]],
       'Scores': [0.6, 0.1, 0.9]},
      {'image_id': 'vid_07_16', 'Boxes': [], 'Scores': []},
      {'image_id': 'other_3', 'Boxes': [[1, 2, 3, 4]], 'Scores': [0.25]}]}
  table = boxes_lib.read_box_json(_write(tmp_path, doc))
  assert sorted(table) == ['other', 'vid_07'] and sorted(table['vid_07']) == [0, 16]
  b, s = table['vid_07'][0]
  np.testing.assert_array_equal(b, [[10, 20, 50, 60], [30, 30, 90, 80]])   # 0.1 dropped
  np.testing.assert_allclose(s, [0.6, 0.9])
  assert len(table['other'][3][0]) == 1                                     # >= 0.25 kept
  out, valid = boxes_lib.frame_boxes(table, 'vid_07', 0, 3, scale=(0.5, 2.0))
  np.testing.assert_array_equal(valid, [True, True, False])
  np.testing.assert_allclose(out[:2], [[15, 60, 45, 160], [5, 40, 25, 120]])  # by score
  out, valid = boxes_lib.frame_boxes(table, 'missing', 0, 2)
  assert not valid.any() and not out.any()


@pytest.mark.parametrize('doc,words', [
    ('{"results": [', ('not valid JSON',)),
    ({'res': []}, ('results',)),
    ({'results': [{'Boxes': []}]}, ('results[0]', 'image_id')),
    ({'results': [{'image_id': 'novideo', 'Boxes': []}]}, ('<video>_<frame>',)),
    ({'results': [{'image_id': 'v_1', 'Boxes': [[1, 2, 3]]}]}, ('Boxes',)),
    ({'results': [{'image_id': 'v_1', 'Boxes': [[1, 2, 3, 4]], 'Scores': [1, 2]}]},
     ('1 boxes but 2 scores',)),
    ({'results': [{'image_id': 'v_1', 'Boxes': [[5, 2, 3, 4]], 'Scores': [1]}]}, ('x2 < x1',)),
    ({'results': [{'image_id': 'v_1', 'Boxes': [], 'Scores': []},
                  {'image_id': 'v_1', 'Boxes': [], 'Scores': []}]}, ('twice',)),
])
def test_refusals(tmp_path, doc, words):
  p = _write(tmp_path, doc)
  with refused(p, *words):
    boxes_lib.read_box_json(p)
