"""The evaluate-only project contract and the evaluator on the tiny config."""

import importlib.util
import os

import numpy as np
import pytest

from jaxvision import config as config_lib
from jaxvision import projects
from jaxvision import train
from jaxvision.projects import hybrid_fmaps

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def _experiment(name):
  spec = importlib.util.spec_from_file_location(
      name, os.path.join(REPO, 'experiments', 'hybrid_fmaps', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_contract():
  assert hybrid_fmaps.kind == 'evaluate_only'
  for name in ('make_model', 'loss_fn', 'make_dataset', 'init_params', 'batch_spec'):
    assert not hasattr(hybrid_fmaps, name)
  assert set(hybrid_fmaps.default_config()) == {'input'}
  projects.check_contract(hybrid_fmaps, 'hybrid_fmaps')


def test_unknown_eval_type_and_key_are_refused(tmp_path):
  c = _experiment('tiny').get_config('tiny')
  c.evals.axiomatic.type = 'learned'
  with pytest.raises(config_lib.ConfigError, match="type='learned'"):
    train.train(c, str(tmp_path / 'a'))
  c = _experiment('tiny').get_config('tiny')
  c.evals.axiomatic.k_lbos = 3
  with pytest.raises(config_lib.ConfigError, match='k_lbos'):
    train.train(c, str(tmp_path / 'b'))


def test_upstream_configs_point_at_the_release():
  for name, folder in (('faust', 'FAUST_r'), ('scape', 'SCAPE_r'), ('smal', 'SMAL_r')):
    c = _experiment(name).get_config()
    assert c.input.data_dir.endswith(folder)
    assert (c.evals.axiomatic.k_lbo, c.evals.axiomatic.k_elastic) == (140, 60)


def test_tiny_config_gives_finite_numbers(tmp_path):
  """Through the binary: an evaluate-only run."""
  summaries = train.train(_experiment('tiny').get_config('tiny'), str(tmp_path))
  out = {k.split('/', 1)[1]: v for k, v in summaries['eval'][0].items()
         if k.startswith('axiomatic/')}
  assert not (tmp_path / 'checkpoints').exists()
  assert out['pairs'] == 1.0
  for basis in ('lbo', 'hybrid'):
    assert np.isfinite(out[f'{basis}/mean_error']) and out[f'{basis}/mean_error'] >= 0
    assert 0.0 <= out[f'{basis}/auc'] <= 1.0


def test_perturbed_truth_without_noise_is_the_true_map():
  from jaxvision.projects.hybrid_fmaps import data, evaluators  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  corr_x, corr_y = rng.permutation(7), rng.permutation(7)
  x = data.Shape('x', np.zeros((7, 3)), np.zeros((1, 3), np.int64), corr_x)
  y = data.Shape('y', np.zeros((7, 3)), np.zeros((1, 3), np.int64), corr_y)
  p2p = evaluators.perturbed_truth(x, y, 0.0, seed=0)
  np.testing.assert_array_equal(p2p[corr_y], corr_x)
  noisy = evaluators.perturbed_truth(x, y, 1.0, seed=0)
  assert noisy.min() >= 0 and noisy.max() < 7


def test_tiny_animals_config_gives_finite_numbers(tmp_path):
  """Through the binary, on the embedded dogs."""
  c = _experiment('tiny_animals').get_config('tiny')
  assert c.input.benchmark == 'dogs'
  summaries = train.train(c, str(tmp_path))
  out = {k.split('/', 1)[1]: v for k, v in summaries['eval'][0].items()
         if k.startswith('axiomatic/')}
  assert out['pairs'] == 1.0
  for basis in ('lbo', 'hybrid'):
    assert np.isfinite(out[f'{basis}/mean_error']) and out[f'{basis}/mean_error'] >= 0
  c.input.benchmark = 'cats'
  with pytest.raises(config_lib.ConfigError, match='benchmark'):
    train.train(c, str(tmp_path / 'b'))
