"""jaxvision.data.digits: splits of scikit-learn's digits and the class filter."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from jaxvision.data import digits


def test_splits_partition_the_real_digits():
  sizes = {s: len(digits.load(s)['label']) for s in ('train', 'val', 'test', 'train_full')}
  assert sizes == {'train': 1257, 'val': 180, 'test': 360, 'train_full': 1437}
  d = load_digits()
  # Every split is a set of scikit-learn's images with their own labels, nothing repeated.
  ref = {img.astype(np.float32).tobytes(): y for img, y in zip(d.images / 16.0, d.target)}
  seen = []
  for s in ('train', 'val', 'test'):
    data = digits.load(s)
    for img, y in zip(data['image'][..., 0], data['label']):
      assert ref[img.astype(np.float32).tobytes()] == y
      seen.append(img.tobytes())
  assert len(seen) == 1797
  with pytest.raises(ValueError, match='unknown digits split'):
    digits.load('dev')


@pytest.mark.parametrize('classes,keep', [('5-9', (5, 6, 7, 8, 9)), ('0-4', (0, 1, 2, 3, 4)),
                                          ('7+2', (7, 2)), ((3, 1), (3, 1))])
def test_class_filter_keeps_those_digits_and_renumbers_them(classes, keep):
  assert digits.parse_classes(classes) == keep
  for split in ('train', 'test'):
    full, sub = digits.load(split), digits.load(split, classes)
    mask = np.isin(full['label'], keep)
    np.testing.assert_array_equal(sub['image'], full['image'][mask])
    # label k is the k-th class of `classes`, in the order given
    np.testing.assert_array_equal(np.asarray(keep)[sub['label']], full['label'][mask])
    assert sub['label'].dtype == np.int32 and set(sub['label']) == set(range(len(keep)))
  assert len(digits.source('val', classes)) == int(np.isin(digits.load('val')['label'],
                                                           keep).sum())


def test_disjoint_class_sets_share_no_image():
  a, b = digits.load('train_full', '0-4'), digits.load('train', '5-9')
  rows = {img.tobytes() for img in a['image']}
  assert not any(img.tobytes() in rows for img in b['image'])
  assert len(a['label']) + len(digits.load('train_full', '5-9')['label']) == 1437


@pytest.mark.parametrize('bad', ['0-10', '3+3', 'five', '4-2', (-1,)])
def test_bad_class_lists_are_rejected(bad):
  with pytest.raises(ValueError, match='digits classes'):
    digits.parse_classes(bad)
  assert digits.parse_classes('') == () and digits.parse_classes(None) == ()
