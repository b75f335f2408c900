"""FroFA's few-shot seeds as one run of the binary: R heads, R k-shot sets, R evaluations.

The protocol (Sec. 4) trains a fresh head per few-shot seed and reports mean ± std over
seeds.  With `config.model.num_replicas = R > 0` one run of `python -m jaxvision.train`
does all R seeds at once, under the binary's mesh, checkpointing and NaN guards:

* the model is `model.ReplicatedClassifier` (R MAP heads vmapped over their params);
  replica r is few-shot seed `input.fewshot_seed + r`;
* `train_source` stacks the R k-shot sets (each in its own seed's random order) into
  examples of shape (R, ...): a batch is (B, R, H, W, C), replica r sees only its set;
* `per_replica_loss` is the sum over replicas of each replica's mean loss, so replica r's
  gradient is exactly its own head's gradient; `clip_per_replica` clips each replica's
  gradient norm on its own (global-norm clipping over all replicas would couple the
  seeds, so `optimizer.grad_clip_norm` must be 0 and `loss.replica_grad_clip_norm` is
  used instead);
* the evaluators report per-seed metrics (`.../seed_<s>`) and their mean: head accuracy
  on a cached split, and the closed-form linear probe fitted on each seed's k-shot set
  (l2 picked on `select_on` by mean accuracy over seeds, or fixed).

Only the batch sampling differs from R separate runs: all replicas share the pipeline's
shuffle of positions (each replica's own set is permuted with its seed first).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision import config as config_lib
from jaxvision.data import fewshot
from jaxvision.data import pipeline
from jaxvision.evaluators import inference
from jaxvision.data.sources import ArraySource
from jaxvision.metrics import linear_probe
from jaxvision.projects.frofa import data
from jaxvision.projects.frofa import probe_inputs

EVALUATOR_DEFAULTS = {
    'type': config_lib.REQUIRED,   # 'seeds_accuracy' (the heads) | 'seeds_linear_probe'
    'split': 'test',          # a cached role: 'val' or 'test'
    'every': 0,
    'batch_size': 256,
    # linear_probe: l2 values; with several, the one with the best mean accuracy over
    # seeds on `select_on` is used (and reported as 'l2').
    'l2_regs': (2.0 ** 10,),
    'select_on': 'val',
    'features': 'mean_tokens',   # probe input, see probe_inputs.py
}


def seeds(config) -> list[int]:
  """The few-shot seeds of the replicas."""
  first = int(config.input.fewshot_seed)
  return list(range(first, first + int(config.model.num_replicas)))


def check_config(config) -> None:
  r = int(config.model.num_replicas)
  if r < 0:
    raise config_lib.ConfigError(f'config.model.num_replicas must be >= 0, got {r}')
  if r and float(config.optimizer.grad_clip_norm or 0.0) > 0:
    raise config_lib.ConfigError(
        'config.optimizer.grad_clip_norm clips the norm over ALL replicas (coupling the '
        'few-shot seeds); with model.num_replicas > 0 set it to 0 and use '
        'config.loss.replica_grad_clip_norm (per replica) instead')
  if r and not int(config.input.shots):
    raise config_lib.ConfigError('model.num_replicas > 0 needs input.shots > 0 (one k-shot '
                                 'set per seed)')


# ------------------------------------------------------------------------------- data


def train_source(input_cfg, seed_list) -> ArraySource:
  """The R k-shot sets as one source of (R, ...) examples (all sets have k x K rows)."""
  pool = data.load_role(input_cfg, 'train')
  feats, labels = [], []
  for s in seed_list:
    idx = fewshot.fewshot_indices(pool['label'], input_cfg.shots, s, input_cfg.num_classes)
    idx = np.random.default_rng(s).permutation(idx)
    feats.append(pool['features'][idx])
    labels.append(pool['label'][idx])
  return ArraySource({'features': np.stack(feats, 1), 'label': np.stack(labels, 1)})


# ------------------------------------------------------------------------------- loss


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def clip_per_replica(params, max_norm: float):
  """Identity on params whose leaves have a leading replica axis; in the backward pass
  each replica's gradient is clipped to norm `max_norm` (optax.clip_by_global_norm's
  rule, per replica)."""
  del max_norm
  return params


def _clip_fwd(params, max_norm):
  del max_norm
  return params, None


def _clip_bwd(max_norm, _, grads):
  leaves = jax.tree.leaves(grads)
  sq = sum(jnp.sum(jnp.reshape(g.astype(jnp.float32) ** 2, (g.shape[0], -1)), axis=1)
           for g in leaves)
  norm = jnp.sqrt(sq)
  factor = jnp.where(norm < max_norm, 1.0, max_norm / jnp.where(norm > 0, norm, 1.0))

  def scale(g):
    return (g * jnp.reshape(factor, (-1,) + (1,) * (g.ndim - 1))).astype(g.dtype)
  return (jax.tree.map(scale, grads),)


clip_per_replica.defvjp(_clip_fwd, _clip_bwd)


def augment_replicas(augment_batch, key, features, targets):
  """`augment_batch(key, f (B, ...), t (B, K))` applied to each replica's own examples
  (B, R, ...) with its own key (mixup never mixes two replicas)."""
  keys = jax.random.split(key, features.shape[1])
  return jax.vmap(augment_batch, in_axes=(0, 1, 1), out_axes=(1, 1))(keys, features, targets)


# ------------------------------------------------------------------------- evaluators


def _check_evaluator(name, cfg, ctx):
  if not ctx.config.model.num_replicas:
    raise config_lib.ConfigError(
        f'config.evals.{name}.type={cfg.type!r} reports per few-shot seed and needs '
        'config.model.num_replicas > 0 (else use the shared classification / linear_probe)')
  for key in ('split', 'select_on'):
    if cfg[key] not in ('val', 'test', 'train'):
      raise config_lib.ConfigError(f"config.evals.{name}.{key}={cfg[key]!r}; use 'val', "
                                   "'test' or 'train' (the cached roles)")
  probe_inputs.check(cfg.features, f'config.evals.{name}.features')


class ReplicaAccuracy:
  """Each replica's head accuracy (and loss) over a whole cached split."""
  DEFAULTS = EVALUATOR_DEFAULTS

  def __init__(self, name, cfg, ctx: inference.EvalContext, predict_fns=None):
    del predict_fns   # the replicated heads are applied with shared inputs below
    _check_evaluator(name, cfg, ctx)
    self.name, self.every, self._cfg, self._ctx = name, int(cfg.every), cfg, ctx
    self._seeds = seeds(ctx.config)
    self._source = ArraySource(data.load_role(ctx.config.input, cfg.split))

  def _per_example(self, params, batch):
    logits = self._ctx.model.apply({'params': params}, batch['features'], train=False,
                                   shared=True)                   # (B, R, K)
    labels = batch['label'][:, None]
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    loss = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    correct = jnp.argmax(logits, -1) == labels
    out = {}
    for r, s in enumerate(self._seeds):
      out[f'correct/seed_{s}'] = correct[:, r]
      out[f'loss/seed_{s}'] = loss[:, r]
    return out

  def run(self, params):
    ctx = self._ctx
    batches = iter(pipeline.eval_dataset(
        self._source, global_batch_size=self._cfg.batch_size,
        process_index=ctx.process_index, process_count=ctx.process_count))
    sums = inference.sum_over_dataset(ctx, batches, self._per_example, params)
    n = max(sums['count'], 1.0)
    out = {'count': sums['count']}
    for s in self._seeds:
      out[f'accuracy/seed_{s}'] = sums[f'correct/seed_{s}'] / n
      out[f'loss/seed_{s}'] = sums[f'loss/seed_{s}'] / n
    acc = [out[f'accuracy/seed_{s}'] for s in self._seeds]
    out['accuracy'], out['accuracy_std'] = fewshot.mean_std(acc)
    out['loss'] = float(np.mean([out[f'loss/seed_{s}'] for s in self._seeds]))
    return out


class ReplicaLinearProbe:
  """The closed-form probe on each seed's k-shot set (`jaxvision.metrics.linear_probe`)."""
  DEFAULTS = EVALUATOR_DEFAULTS

  def __init__(self, name, cfg, ctx: inference.EvalContext, predict_fns=None):
    del predict_fns
    _check_evaluator(name, cfg, ctx)
    self.name, self.every, self._cfg, self._ctx = name, int(cfg.every), cfg, ctx
    if not cfg.l2_regs:
      raise config_lib.ConfigError(f'config.evals.{name}.l2_regs is empty')
    self._seeds = seeds(ctx.config)
    self._input = ctx.config.input

  def run(self, params):
    cfg, inp = self._cfg, self._input
    feats = functools.partial(probe_inputs.probe_features, cfg.features, self._ctx, params,
                              inp)
    pool = feats('train')
    roles = [cfg.split] + ([cfg.select_on] if len(cfg.l2_regs) > 1 else [])
    evals = {role: feats(role) for role in dict.fromkeys(roles)}
    acc = {role: {float(l2): {} for l2 in cfg.l2_regs} for role in evals}
    for s in self._seeds:
      idx = fewshot.fewshot_indices(pool['label'], inp.shots, s, inp.num_classes)
      cache = linear_probe.fit(pool['x'][idx], pool['label'][idx], inp.num_classes)
      for role, e in evals.items():
        for l2 in acc[role]:
          acc[role][l2][s] = linear_probe.accuracy(cache, e['x'], e['label'], l2)
    best = (max(acc[cfg.select_on], key=lambda l2: np.mean(list(acc[cfg.select_on][l2].values())))
            if len(cfg.l2_regs) > 1 else float(cfg.l2_regs[0]))
    out = {f'accuracy/seed_{s}': a for s, a in acc[cfg.split][best].items()}
    out['accuracy'], out['accuracy_std'] = fewshot.mean_std(acc[cfg.split][best].values())
    out['l2'], out['count'] = best, float(len(evals[cfg.split]['label']))
    return out


# Evaluator types of a replicated run (the project's `EVALUATORS`).
EVALUATORS = {'seeds_accuracy': ReplicaAccuracy, 'seeds_linear_probe': ReplicaLinearProbe}
