"""The tfds path on real data: prepare the digits as a tfds dataset, read it back."""

import numpy as np
import pytest

from jaxvision import train
from jaxvision.data import digits
from jaxvision.data import sources
from jaxvision.data import tfds_digits
from tests import helpers


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  d = str(tmp_path_factory.mktemp('tfds'))
  tfds_digits.prepare(d)
  return d


def test_tfds_source_reads_back_the_real_digits(data_dir):
  src = sources.TfdsSource('jaxvision_digits', 'test', data_dir,
                           fields={'image': 'image', 'label': 'label'})
  ref = digits.load('test')
  assert len(src) == len(ref['label']) == 360
  # tfds may store examples in any order: compare as multisets keyed by content.
  got = sorted((src[i]['image'].tobytes(), int(src[i]['label'])) for i in range(len(src)))
  want = sorted((np.round(im * 255).astype(np.uint8).tobytes(), int(l))
                for im, l in zip(ref['image'], ref['label']))
  assert got == want


def test_missing_tfds_dataset_error_names_it(tmp_path):
  with pytest.raises(FileNotFoundError, match="tfds dataset 'jaxvision_digits' split 'test' is "
                     'not prepared under data_dir'):
    sources.TfdsSource('jaxvision_digits', 'test', str(tmp_path))


def test_binary_trains_from_a_tfds_data_dir(data_dir, tmp_path):
  config = helpers.digits_config(**{
      'total_steps': 3, 'input.dataset': 'jaxvision_digits', 'input.data_dir': data_dir,
      'input.train_split': 'train'})
  out = train.train(config, str(tmp_path))
  assert sorted(out['train']) == [1, 2, 3]
  assert out['eval'][3]['val/count'] == 180
