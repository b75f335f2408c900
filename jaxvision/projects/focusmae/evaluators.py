"""FocusMAE's pre-training evaluator: masked-tube reconstruction error on held-out clips.

`type='reconstruction'` (this project's EVALUATORS): the mean per-token normalised-pixel
MSE (losses.reconstruction_loss, Basu et al. CVPR 2024 Sec. 3 / VideoMAE Sec. 3.3) of
the configured masking, with each clip's mask drawn from a key fixed by the clip's index
in the split (the same masks at every evaluation, whatever the batch size).
"""

from __future__ import annotations

import jax

from jaxvision.evaluators import common
from jaxvision.evaluators import inference
from jaxvision.projects.focusmae import losses
from jaxvision.projects.focusmae import model as model_lib

INDEX_KEY = inference.INDEX_KEY


def per_clip_masks(batch, model, mask_cfg, seed: int = 0):
  """Masks keyed by each clip's `_index` (or its batch position)."""
  from jaxvision.projects import focusmae  # pylint: disable=g-import-not-at-top
  n = batch['video'].shape[0]
  index = batch.get(INDEX_KEY, jax.numpy.arange(n))
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(index)
  one = lambda k, ex: focusmae.sample_masks(k, jax.tree.map(lambda x: x[None], ex), model,  # pylint: disable=g-long-lambda
                                             mask_cfg)[0]
  fields = {k: batch[k] for k in ('video', 'boxes', 'box_valid')}
  return jax.vmap(one)(keys, fields)


def predict_fns(model, config):
  """{'reconstruct': fn(params, batch) -> {'pred', 'mask', 'target', 'loss' (B,)}}."""
  def reconstruct(params, batch):
    mask = per_clip_masks(batch, model, config.masking)
    pred = model.apply({'params': params}, model_lib.normalize_video(batch['video']), mask)
    masked = model_lib.masked_index(mask, model.num_visible)
    _, per_token = losses.reconstruction_loss(
        pred, batch['video'], masked, tubelet=model.tubelet, patch=model.patch,
        normalize=config.loss.normalize_target)
    target = model_lib.gather_tokens(
        losses.normalized_targets(batch['video'], model.tubelet, model.patch), masked)
    return {'pred': pred, 'mask': mask, 'target': target, 'loss': per_token.mean(-1)}
  return {'reconstruct': reconstruct}


class Reconstruction(common.Evaluator):
  """`run(params)` -> {'loss': mean masked-tube MSE, 'count'}."""

  DEFAULTS = common.defaults(pred='reconstruct', split='val', batch_size=8)

  def __init__(self, name, cfg, ctx, predict_fns_):
    super().__init__(name, cfg, ctx, predict_fns_)
    fn = self.fn

    def per_example(params, batch):
      return {'loss': self.output(fn(params, batch), 'loss')}
    self.per_example = per_example

  def run(self, params):
    sums = inference.sum_over_dataset(self.ctx, self.batches(), self.per_example, params)
    n = max(sums['count'], 1.0)
    return {'loss': sums['loss'] / n, 'count': sums['count']}


EVALUATORS = {'reconstruction': Reconstruction}
