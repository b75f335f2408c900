"""A small trained project with BatchNorm, for tests of the train state and stages.

An MLP regressor `y = sin(x . w)` whose `backbone` (Dense + BatchNorm, fsdp/model
sharded) carries the mutable `batch_stats` collection, and a `head`.  Tests register it
as `jaxvision.projects.toy` with `register(monkeypatch)`.
"""

from __future__ import annotations

import sys
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvision.data import pipeline

NAME = 'toy'
DIM = 8
kind = 'trained'
mutable = ('batch_stats',)


class Backbone(nn.Module):
  hidden: int

  @nn.compact
  def __call__(self, x, *, train):
    x = nn.Dense(self.hidden, kernel_init=nn.with_logical_partitioning(
        nn.initializers.lecun_normal(), ('embed', 'mlp')))(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.8)(x)
    return nn.relu(x)


class Toy(nn.Module):
  hidden: int
  out: int

  @nn.compact
  def __call__(self, x, *, train):
    return nn.Dense(self.out, name='head')(Backbone(self.hidden, name='backbone')(x, train=train))


def default_config():
  return ml_collections.ConfigDict({'model': {'hidden': 16, 'out': 1},
                                    'input': {'batch_size': 16, 'n': 256}})


def make_model(cfg):
  return Toy(hidden=cfg.hidden, out=cfg.out)


def init_params(model, rng, batch):
  return model.init({'params': rng}, batch['x'], train=False)


def batch_spec(config, split):
  del split
  b = config.input.batch_size
  return {'x': jax.ShapeDtypeStruct((b, DIM), jnp.float32),
          'y': jax.ShapeDtypeStruct((b,), jnp.float32)}


def loss_fn(params, batch, rng, *, model, config, collections):
  del rng, config
  out, new = model.apply({'params': params, **collections}, batch['x'], train=True,
                         mutable=['batch_stats'])
  loss = jnp.mean((out - batch['y'][:, None]) ** 2)
  return loss, ({'mse': loss}, new)


def _examples(n, seed):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, DIM)).astype(np.float32)
  y = np.sin(x @ np.linspace(-1, 1, DIM)).astype(np.float32)
  return [{'x': x[i], 'y': y[i]} for i in range(n)]


def make_dataset(config, split, *, seed, process_index, process_count):
  return pipeline.train_dataset(_examples(config.input.n, 0 if split == 'train' else 1),
                                global_batch_size=config.input.batch_size, seed=seed,
                                process_index=process_index, process_count=process_count)


class MseEvaluator:
  """Mean squared error on 64 held-out examples with the running BatchNorm averages."""
  DEFAULTS = {'type': 'mse', 'every': 0}

  def __init__(self, name, cfg, ctx, predict_fns):
    del predict_fns
    self.name, self.every = name, int(cfg.every)
    self._model = ctx.model
    ex = _examples(64, 1)
    self._x = np.stack([e['x'] for e in ex])
    self._y = np.stack([e['y'] for e in ex])

  def run(self, variables):
    out = self._model.apply(variables, self._x, train=False)
    return {'mse': float(np.mean((np.asarray(out)[:, 0] - self._y) ** 2))}


EVALUATORS = {'mse': MseEvaluator}


def register(monkeypatch) -> types.ModuleType:
  """Makes this module importable as `jaxvision.projects.toy` for one test."""
  module = sys.modules[__name__]
  monkeypatch.setitem(sys.modules, f'jaxvision.projects.{NAME}', module)
  return module
