"""What the shared evaluators (`jaxvision.evaluators`) run for ViT classification.

`predict`: logits and the per-example training loss (softmax or sigmoid cross-entropy,
`config.loss.kind`, without label smoothing) for `type='classification'`;
`features`: the pre-logits (big_vision's few-shot representation) for
`type='linear_probe'`, `'retrieval'` (as `embedding`) or `'save_predictions'`.
Evaluation data: any split of the dataset, with the evaluation preprocessing.
"""

from __future__ import annotations

from jaxvision.projects.classification import data
from jaxvision.projects.classification import losses


def predict_fns(model, config):

  def predict(params, batch):
    logits, _ = model.apply({'params': params}, batch['image'], train=False)
    loss = losses.classification_loss(logits, batch['label'], kind=config.loss.kind)
    return {'logits': logits, 'loss': loss}

  def features(params, batch):
    _, out = model.apply({'params': params}, batch['image'], train=False)
    return {'features': out['pre_logits'], 'embedding': out['pre_logits']}

  return {'predict': predict, 'features': features}


def eval_data(config, split: str):
  _, eval_fn = data.preprocess_fns(config.input)
  return data.make_source(config.input, split), eval_fn
