"""Image-classification inputs: the bundled digits, or any tfds image dataset.

`input.dataset` is 'digits' (scikit-learn's real 8x8 digits, `jaxvision.data.digits`)
or the name of a tfds dataset prepared under `input.data_dir` (e.g. 'imagenet2012').
Training preprocessing: optional inception crop or pad-and-crop, resize, optional
horizontal flip, scale to `value_range`.  Evaluation: resize the smaller side to
`image_size / 0.875` and centre crop (the classic ImageNet protocol), or plain resize
for tiny images.
"""

from __future__ import annotations

import functools

import numpy as np

from jaxvision.data import digits
from jaxvision.data import image_ops
from jaxvision.data.sources import TfdsSource


def make_source(input_cfg, split: str):
  classes = input_cfg.get('classes', '')
  if input_cfg.dataset == 'digits':
    return digits.source(split, classes)
  if classes:
    raise ValueError(f'input.classes={classes!r} is only supported for the digits dataset')
  if input_cfg.dataset == 'jaxvision_digits':
    from jaxvision.data import tfds_digits  # pylint: disable=g-import-not-at-top,unused-import
  return TfdsSource(input_cfg.dataset, split, input_cfg.data_dir or None,
                    fields={'image': input_cfg.image_key, 'label': input_cfg.label_key})


def _finish(image, label, input_cfg):
  image = image_ops.to_float(image, tuple(input_cfg.value_range))
  if image.ndim == 2:
    image = image[..., None]
  return {'image': image.astype(np.float32), 'label': np.asarray(label, np.int32)}


def train_preprocess(example, rng, *, input_cfg):
  image = np.asarray(example['image'])
  size = tuple(input_cfg.image_size)
  aug = input_cfg.augment
  if aug.inception_crop:
    image = image_ops.inception_crop(image, rng, area_range=tuple(aug.inception_area))
  image = image_ops.resize(image, size)
  if aug.crop_pad:
    image = image_ops.random_crop_with_pad(image, aug.crop_pad, rng)
  if aug.flip:
    image = image_ops.random_flip_lr(image, rng)
  return _finish(image, example['label'], input_cfg)


def eval_preprocess(example, *, input_cfg):
  image = np.asarray(example['image'])
  size = tuple(input_cfg.image_size)
  if input_cfg.eval_central_crop:
    image = image_ops.resize_small(image, int(round(size[0] / 0.875)))
    image = image_ops.central_crop(image, size[0])
  image = image_ops.resize(image, size)
  return _finish(image, example['label'], input_cfg)


def preprocess_fns(input_cfg):
  return (functools.partial(train_preprocess, input_cfg=input_cfg),
          functools.partial(eval_preprocess, input_cfg=input_cfg))
