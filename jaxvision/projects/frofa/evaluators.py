"""What the shared evaluators (`jaxvision.evaluators`) run for FroFA.

`predict`: the MAP head's logits on cached feature grids (`type='classification'`:
top-1 accuracy and softmax cross-entropy); `features`: the cached grids average-pooled
to one vector per image, for the closed-form L2-regularised linear probe
(`type='linear_probe'` with `train_split='fewshot'`: fitted on the same k-shot training
set as the head; the paper's linear-probe baseline).  The parameters play no part in
`features`: the backbone is frozen and its features are cached.

Evaluation splits are the cached roles: 'fewshot' (the k-shot training set), 'train'
(the whole cached pool), 'val' and 'test'.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision import config as config_lib
from jaxvision.data.sources import ArraySource
from jaxvision.projects.frofa import data

SPLITS = ('fewshot', 'train', 'val', 'test')


def predict_fns(model, config):
  del config

  def predict(params, batch):
    return {'logits': model.apply({'params': params}, batch['features'], train=False)}

  def features(params, batch):
    del params
    f = batch['features'].astype(jnp.float32)
    f = f.reshape(f.shape[0], -1, f.shape[-1])
    # Summed position by position, in order (numpy's order for this reduction), so the
    # probe's numbers equal those of the cached-array path (`study.py`) bit for bit.
    total = jax.lax.scan(lambda acc, x: (acc + x, None), jnp.zeros_like(f[:, 0]),
                         jnp.swapaxes(f, 0, 1))[0]
    return {'features': total / f.shape[1]}

  return {'predict': predict, 'features': features}


def eval_data(config, split: str):
  if split not in SPLITS:
    raise config_lib.ConfigError(f'FroFA evaluates on the cached roles {SPLITS}, not split '
                                 f'{split!r} (config.evals.*.split)')
  arrays = data.fewshot_train(config.input) if split == 'fewshot' else data.load_role(
      config.input, split)
  return ArraySource(arrays), None
