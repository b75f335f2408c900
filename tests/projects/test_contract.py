"""The project contract: each kind's required functions, checked at start-up by name."""

from __future__ import annotations

import sys
import types

import ml_collections
import pytest

from jaxvision import config as config_lib
from jaxvision import projects
from jaxvision import train


def _module(name, **attrs):
  m = types.ModuleType(f'jaxvision.projects.{name}')
  m.__file__ = f'/fake/{name}/__init__.py'
  for k, v in attrs.items():
    setattr(m, k, v)
  return m


def _fn(*a, **k):
  del a, k


@pytest.mark.parametrize('name,kind', [('classification', 'trained'), ('frofa', 'trained'),
                                       ('flowmdm', 'trained'), ('flowmdm.t2m', 'trained'),
                                       ('couplap', 'evaluate_only')])
def test_every_project_declares_a_kind_and_meets_it(name, kind):
  module = projects.load_project(name)
  assert module.kind == kind
  for f in projects.REQUIRED[kind]:
    assert callable(getattr(module, f))


def test_missing_functions_are_named(monkeypatch):
  m = _module('half', kind='trained', default_config=_fn, EVALUATORS={}, make_model=_fn)
  monkeypatch.setitem(sys.modules, m.__name__, m)
  with pytest.raises(projects.ContractError,
                     match=r"project 'half' \(/fake/half/__init__.py\) is of kind 'trained' but "
                     r"does not provide \['init_params', 'batch_spec', 'loss_fn', 'make_dataset'\]"):
    projects.load_project('half')


def test_kind_is_required_and_checked(monkeypatch):
  m = _module('nokind', default_config=_fn, EVALUATORS={})
  monkeypatch.setitem(sys.modules, m.__name__, m)
  with pytest.raises(projects.ContractError, match='declares no `kind`'):
    projects.load_project('nokind')
  m.kind = 'trainable'
  with pytest.raises(projects.ContractError, match=r"kind='trainable'; valid kinds"):
    projects.load_project('nokind')


def test_evaluate_only_may_not_carry_stand_ins(monkeypatch):
  m = _module('standin', kind='evaluate_only', default_config=_fn, EVALUATORS={},
              make_model=_fn, loss_fn=_fn)
  monkeypatch.setitem(sys.modules, m.__name__, m)
  with pytest.raises(projects.ContractError, match=r"defines \['make_model', 'loss_fn'\]"):
    projects.load_project('standin')


def test_bad_mutable_is_named(monkeypatch):
  m = _module('mut', kind='evaluate_only', default_config=_fn, EVALUATORS={},
              mutable='batch_stats')
  monkeypatch.setitem(sys.modules, m.__name__, m)
  with pytest.raises(projects.ContractError, match='`mutable` must be a tuple'):
    projects.load_project('mut')


def _recorder(calls):
  class Recorder:
    DEFAULTS = {'type': 'rec', 'every': 0}

    def __init__(self, name, cfg, ctx, predict_fns):
      del predict_fns
      self.name, self.every, self.ctx, self.calls = name, int(cfg.every), ctx, calls

    def run(self, params):
      self.calls.append((params, self.ctx.model, self.ctx.workdir))
      return {'value': 3.0}
  return Recorder


def test_evaluate_only_run_has_no_model_or_state(monkeypatch, tmp_path):
  calls = []
  m = _module('evalonly', kind='per_example',
              default_config=lambda: ml_collections.ConfigDict({'input': {'n': 1}}),
              EVALUATORS={'rec': _recorder(calls)})
  monkeypatch.setitem(sys.modules, m.__name__, m)
  config = config_lib.with_defaults(ml_collections.ConfigDict(
      {'project': 'evalonly', 'evals': {'rec': {'type': 'rec'}}}))
  assert 'optimizer' not in config and 'checkpoint' not in config and config.total_steps == 0
  out = train.train(config, str(tmp_path))
  assert out['eval'][0]['rec/value'] == 3.0
  assert calls == [(None, None, str(tmp_path))]
  assert not (tmp_path / 'checkpoints').exists()
  with pytest.raises(config_lib.ConfigError, match='trains nothing; set it to 0'):
    train.train(ml_collections.ConfigDict({'project': 'evalonly', 'total_steps': 3}),
                str(tmp_path))
  with pytest.raises(config_lib.ConfigError, match="of kind 'per_example'"):
    train.build(config)
