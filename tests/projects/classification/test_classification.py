"""The classification project: losses vs numpy, pretrained loading through the binary."""

import numpy as np
import pytest

from jaxvision import checkpoint
from jaxvision import config as config_lib
from jaxvision import train
from jaxvision.nn import vit_checkpoint
from jaxvision.projects.classification import losses
from tests import helpers


def _np_log_softmax(z):
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_softmax_xent_with_label_smoothing_matches_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(6, 5)).astype(np.float32)
  labels = rng.integers(0, 5, size=6)
  eps = 0.1
  targets = np.full((6, 5), eps / 5)
  targets[np.arange(6), labels] += 1 - eps
  want = -(targets * _np_log_softmax(logits.astype(np.float64))).sum(-1)
  got = losses.classification_loss(logits, labels, kind='softmax_xent', label_smoothing=eps)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_sigmoid_xent_matches_numpy():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(4, 3)).astype(np.float64)
  labels = np.array([0, 2, 1, 2])
  y = np.eye(3)[labels]
  p = 1 / (1 + np.exp(-logits))
  want = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(-1)
  got = losses.classification_loss(logits.astype(np.float32), labels, kind='sigmoid_xent')
  np.testing.assert_allclose(got, want, rtol=1e-5)
  with pytest.raises(ValueError, match="unknown loss 'hinge'"):
    losses.classification_loss(logits, labels, kind='hinge')


def test_pretrained_weights_load_through_the_binary(tmp_path):
  """A run's weights, re-entered as a big_vision .npz or a workdir, evaluate the same."""
  source = str(tmp_path / 'source')
  trained = train.train(helpers.digits_config(total_steps=6), source)
  accuracy = trained['eval'][6]['val/accuracy']
  params = checkpoint.load_params(source)
  npz = str(tmp_path / 'vit.npz')
  vit_checkpoint.save_big_vision_npz(npz, params)

  from_npz = train.train(helpers.digits_config(**{'total_steps': 0, 'init.npz': npz}),
                         str(tmp_path / 'from_npz'))
  assert from_npz['eval'][0]['val/accuracy'] == pytest.approx(accuracy)
  from_workdir = train.train(
      helpers.digits_config(**{'total_steps': 0, 'init.workdir': source}),
      str(tmp_path / 'from_workdir'))
  assert from_workdir['eval'][0]['val/accuracy'] == pytest.approx(accuracy)
  # A fresh head (dont_load) gives chance-level zero-init logits: accuracy changes.
  fresh_head = train.train(
      helpers.digits_config(**{'total_steps': 0, 'init.workdir': source,
                               'init.dont_load': ('head/.*',), 'model.head_zeroinit': True}),
      str(tmp_path / 'fresh_head'))
  assert fresh_head['eval'][0]['val/accuracy'] != pytest.approx(accuracy)
  with pytest.raises(config_lib.ConfigError, match='set only one of config.init.npz'):
    train.train(helpers.digits_config(**{'total_steps': 0, 'init.npz': npz,
                                         'init.workdir': source}), str(tmp_path / 'both'))
