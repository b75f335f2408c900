"""A toy 'project' for evaluator tests: a linear map on in-memory splits, 8 CPU devices."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision import sharding as sharding_lib
from jaxvision.data.sources import ArraySource
from jaxvision.evaluators import inference


def context(splits, *, mesh=None, workdir=None, params=None):
  mesh = mesh or sharding_lib.make_mesh({'data': 4, 'fsdp': 1, 'model': 2})
  rules = sharding_lib.normalize_rules(sharding_lib.DEFAULT_RULES)
  shardings = jax.tree.map(lambda _: sharding_lib.replicated(mesh), params or {})
  return inference.EvalContext(model=None, mesh=mesh, rules=rules, param_shardings=shardings,
                               config={'input': {'num_workers': 0}}, workdir=workdir,
                               data=lambda split: (ArraySource(splits[split]), None))


def linear(params, batch):
  return {'logits': batch['x'] @ params['w']}


def params_and_data(n=37, d=5, c=3, seed=0):
  rng = np.random.default_rng(seed)
  w = rng.normal(size=(d, c)).astype(np.float32)
  x = rng.normal(size=(n, d)).astype(np.float32)
  y = np.argmax(x @ w + rng.normal(size=(n, c)), 1).astype(np.int32)
  return {'w': jnp.asarray(w)}, {'x': x, 'label': y}
