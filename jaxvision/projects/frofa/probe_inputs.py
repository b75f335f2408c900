"""What the linear-probe baseline of FroFA sees (Sec. 4; big_vision `fewshot_lsr.py`).

big_vision's few-shot evaluator fits its closed-form probe on the model's *pre-logits*:
for a MAP-pooled backbone (the paper's JFT-3B / WebLI ViTs) the output of the
backbone's own MAP head, for a GAP ViT the mean token, for a class-token ViT the class
token.  The project offers both inputs, chosen per evaluator (`features`):

* 'prelogits' (faithful): the backbone's pre-logits, extracted once beside the
  feature grids (`data.load_role(..., prelogits=True)`, `backbones` with
  `prelogits=True`; VGG16 has no classifier, so its pre-logits are the global average
  of the feature map);
* 'mean_tokens': the mean of the cached feature grid's tokens (the project's first
  choice, kept for the digits results of the README).

With big_vision's defaults (fixed l2 = 2^10, 3 seeds) 'prelogits' is its evaluator.
"""

from __future__ import annotations

import numpy as np

from jaxvision import config as config_lib
from jaxvision.projects.frofa import data

KINDS = ('mean_tokens', 'prelogits')


def check(kind: str, where: str) -> None:
  if kind not in KINDS:
    raise config_lib.ConfigError(f'{where}={kind!r}; valid: {KINDS}')


def from_batch(kind: str, batch):
  """Probe input (B, D) of a batch {'features': (B, ..., C)[, 'prelogits': (B, D)]}."""
  if kind == 'prelogits':
    if 'prelogits' not in batch:
      raise KeyError("probe input 'prelogits' needs the batch field 'prelogits' "
                     '(data.load_role(..., prelogits=True))')
    return batch['prelogits']
  f = batch['features']
  return f.reshape(f.shape[0], -1, f.shape[-1]).mean(1)


def probe_features(kind: str, ctx, params, input_cfg, role: str) -> dict[str, np.ndarray]:
  """{'x': (N, D), 'label': (N,)} of a cached role (params unused: inputs are frozen)."""
  del ctx, params
  arrays = data.load_role(input_cfg, role, prelogits=kind == 'prelogits')
  return {'x': np.asarray(from_batch(kind, arrays), np.float32), 'label': arrays['label']}
