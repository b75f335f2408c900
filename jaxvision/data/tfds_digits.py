"""A tfds builder over the bundled digits: the tfds path, exercised on real data.

`tfds` datasets are prepared once into a `data_dir` and then read with random access
(`jaxvision.data.sources.TfdsSource`).  This builder writes scikit-learn's digits in
that form (array_record files, uint8 8x8x1 images) with no network, so the same
`input.dataset=<tfds name>` code path that reads ImageNet is tested end to end.

  from jaxvision.data import tfds_digits
  tfds_digits.prepare(data_dir)            # then input.dataset='jaxvision_digits'
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from jaxvision.data import digits


class JaxvisionDigits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's 8x8 digits with the splits of `jaxvision.data.digits`."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=digits.IMAGE_SHAPE, dtype=np.uint8),
            'label': tfds.features.ClassLabel(num_classes=digits.NUM_CLASSES),
        }),
        supervised_keys=('image', 'label'),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {name: self._generate_examples(name) for name in ('train', 'val', 'test')}

  def _generate_examples(self, split):
    data = digits.load(split)
    # Back to the 17 original grey levels, spread over uint8 (0..16 -> 0..255).
    images = np.round(data['image'] * 255.0).astype(np.uint8)
    for i, (image, label) in enumerate(zip(images, data['label'])):
      yield i, {'image': image, 'label': int(label)}


def prepare(data_dir: str) -> None:
  """Builds the dataset into `data_dir` (array_record files; idempotent)."""
  builder = JaxvisionDigits(data_dir=data_dir, file_format='array_record')
  builder.download_and_prepare()
