"""The optax optimizer and learning-rate schedule, built from a config.

`make_optimizer(config, params_shape_tree, total_steps)` reads two sections of the
experiment config and returns `(tx, schedule)`. Parameters are named by their
'/'-joined key path ('Transformer/encoderblock_0/MlpBlock_0/Dense_0/kernel'), and
every regex below is matched against that name with `re.fullmatch`.

config.optimizer:
  name            'adamw' | 'adam' | 'sgd' | 'lamb'.
  b1, b2, eps     Adam moments (adamw, adam, lamb). Defaults 0.9, 0.999, 1e-8.
  momentum        sgd only; 0 or None = plain SGD. Default 0.9.
  nesterov        sgd only. Default False.
  weight_decay    decoupled decay, multiplied by the learning rate as in optax.adamw:
                  p <- p - lr * (update + weight_decay * p). Applied after the
                  optimizer's own scaling (and before LAMB's trust ratio), so with
                  sgd it is SGDW, not L2 through the momentum. 'adam' is Adam
                  without decay: a non-zero weight_decay with it is an error (use
                  'adamw'). Default 0.
  wd_mask         regex, or list of regexes, of the params that decay; '' / None /
                  [] = none. Default '.*/kernel' (no decay on biases, norms, embeddings).
  grad_clip_norm  clip the global gradient norm to this; 0 / None = off. The norm is
                  over trainable params only. Default 0.0 (off).
  updates_per_step  apply the update this many times per step from the SAME gradient
                  (each on the params the previous one produced; optimizer state
                  advances each time). 2 reproduces FlowMDM's own training loop
                  (utils/training_loop.py at e81c67f), whose forward_backward calls
                  opt.step() after loss.backward() and whose run_step then steps
                  again through mp_trainer.optimize, on the same gradients. MDM and
                  PriorMDM, whose loop FlowMDM's derives from, step once per batch
                  (their forward_backward only calls mp_trainer.backward). Default 1.
  lr_rules        list of (regex, multiplier), first match wins, unmatched = 1.0.
                  The multiplier scales the schedule for that param (decay too);
                  0.0 freezes it: zero updates and no optimizer state (MaskedNode).
                  Default [].
  groups          param groups with their own optimizer: list of (regex, {overrides}),
                  first match wins; params no group matches (and not frozen) use the
                  settings above. Overrides: name, b1, b2, eps, momentum, nesterov,
                  weight_decay, wd_mask (e.g. [('backbone/.*', {'name': 'sgd',
                  'momentum': 0.9})] trains the backbone with SGD, the rest with
                  AdamW). The schedule, lr_rules and grad_clip_norm (over all trainable
                  params) are shared. Each group holds only its own state. Default [].
config.schedule:
  type            'constant' | 'cosine' | 'linear' | 'step' | 'rsqrt'.
  base_lr         peak learning rate. Default 1e-3.
  warmup_steps    linear ramp from 0 at step 0 to base_lr at step warmup_steps; a
                  value in (0, 1) is a fraction of total_steps. Default 0.
  end_lr          cosine / linear value at total_steps. Default 0.
  boundaries      step: steps (ints, or fractions in (0, 1) of total_steps) at which
                  the lr is multiplied by decay_factor. Defaults [], 0.1.
  timescale       rsqrt: lr = base_lr / sqrt(1 + (step - warmup_steps) / timescale).
                  Default 10000.
Cosine and linear decay run from warmup_steps to total_steps; step boundaries count
from step 0. A key not listed here is an error, so a misspelt key cannot be ignored.

The optimizer state holds `optax.MaskedNode()` where a param is frozen. To give the
state the params' shardings, map with `tree_map_params` below (optax.tree_map_params
that leaves those MaskedNodes in place); plain `optax.tree_map_params(tx, f, state)`
with no extra trees works as is.
"""
import math
import re

import jax
import jax.numpy as jnp
import optax

OPTIMIZERS = ('adamw', 'adam', 'sgd', 'lamb')
SCHEDULES = ('constant', 'cosine', 'linear', 'step', 'rsqrt')

_OPTIMIZER_DEFAULTS = dict(
    name='adamw', b1=0.9, b2=0.999, eps=1e-8, momentum=0.9, nesterov=False,
    weight_decay=0.0, wd_mask='.*/kernel', grad_clip_norm=0.0, lr_rules=(),
    updates_per_step=1, groups=())
# What a param group may set for itself (the rest is shared by all groups).
_GROUP_KEYS = ('name', 'b1', 'b2', 'eps', 'momentum', 'nesterov', 'weight_decay', 'wd_mask')
_SCHEDULE_DEFAULTS = dict(
    type='constant', base_lr=1e-3, warmup_steps=0, end_lr=0.0, boundaries=(),
    decay_factor=0.1, timescale=10000)


def default_optimizer_config():
  """Every key of `config.optimizer`, with its default (the trainer's schema)."""
  return dict(_OPTIMIZER_DEFAULTS)


def default_schedule_config():
  """Every key of `config.schedule`, with its default (the trainer's schema)."""
  return dict(_SCHEDULE_DEFAULTS)


def _with_defaults(cfg, defaults, section):
  """The section as a dict over `defaults`; unknown keys are an error."""
  cfg = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg or {})
  unknown = sorted(set(cfg) - set(defaults))
  if unknown:
    raise ValueError(f'Unknown key(s) {unknown} in config.{section}; '
                     f'allowed: {sorted(defaults)}.')
  return {**defaults, **cfg}


def _choice(value, allowed, what):
  if value not in allowed:
    raise ValueError(f'Unknown {what} {value!r}; allowed: {", ".join(allowed)}.')
  return value


def _to_steps(value, total_steps, what):
  """An int step count, or a fraction in (0, 1) of total_steps."""
  if 0 < value < 1:
    return int(round(value * total_steps))
  if value < 0 or value != int(value):
    raise ValueError(f'{what}={value!r}: give a step count >= 0 or a fraction '
                     'in (0, 1) of total_steps.')
  return int(value)


# ---------------------------------------------------------------- schedule


def make_schedule(cfg, total_steps):
  """The learning rate as a jit-able function of the step (see module docstring)."""
  c = _with_defaults(cfg, _SCHEDULE_DEFAULTS, 'schedule')
  kind = _choice(c['type'], SCHEDULES, 'schedule type')
  base, end = float(c['base_lr']), float(c['end_lr'])
  warmup = _to_steps(c['warmup_steps'], total_steps, 'warmup_steps')
  if total_steps > 0 and warmup > total_steps:
    raise ValueError(f'warmup_steps={warmup} exceeds total_steps={total_steps}.')
  decay_steps = max(1, total_steps - warmup)
  boundaries = [_to_steps(b, total_steps, 'boundaries') for b in c['boundaries']]
  factor, timescale = float(c['decay_factor']), float(c['timescale'])
  if kind == 'rsqrt' and timescale <= 0:
    raise ValueError(f'timescale={timescale} must be > 0.')

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    # Progress through the decay phase, 0 during warmup and 1 from total_steps on.
    frac = jnp.clip((step - warmup) / decay_steps, 0.0, 1.0)
    if kind == 'constant':
      lr = jnp.full_like(step, base)
    elif kind == 'cosine':
      lr = end + (base - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
    elif kind == 'linear':
      lr = base + (end - base) * frac
    elif kind == 'step':
      n_passed = sum((step >= b).astype(jnp.float32) for b in boundaries)
      n_passed = n_passed + jnp.zeros_like(step)  # an array even with no boundaries
      lr = base * factor ** n_passed
    else:  # rsqrt
      lr = base / jnp.sqrt(1.0 + jnp.maximum(step - warmup, 0.0) / timescale)
    if warmup > 0:
      lr = lr * jnp.minimum(1.0, step / warmup)
    return lr

  return schedule


# ---------------------------------------------------------------- param groups


def _names(params):
  """Flat list of '/'-joined param names, and the tree's structure."""
  leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
  names = [jax.tree_util.keystr(p, simple=True, separator='/') for p, _ in leaves]
  return names, treedef


def _as_regexes(value):
  if not value:
    return []
  return [value] if isinstance(value, str) else list(value)


def _lr_multipliers(params, rules):
  """Per-leaf multipliers from first-match (regex, multiplier) rules, validated."""
  names, treedef = _names(params)
  rules = list(rules or [])
  for rule in rules:
    if not (isinstance(rule, (tuple, list)) and len(rule) == 2
            and isinstance(rule[0], str)):
      raise ValueError(f'lr_rules entry {rule!r} is not a (regex, multiplier) pair.')
    try:
      mult = float(rule[1])
    except (TypeError, ValueError):
      mult = math.nan
    if not math.isfinite(mult) or mult < 0:
      raise ValueError(f'lr_rules multiplier {rule[1]!r} for {rule[0]!r} must be a '
                       'finite number >= 0 (0.0 freezes).')
  compiled = [re.compile(regex) for regex, _ in rules]
  used = [False] * len(rules)
  mults = []
  for name in names:
    for i, rx in enumerate(compiled):
      if rx.fullmatch(name):
        used[i] = True
        mults.append(float(rules[i][1]))
        break
    else:
      mults.append(1.0)
  for (regex, _), rx, was_used in zip(rules, compiled, used):
    if not was_used:
      why = ('every parameter it matches is taken by an earlier rule'
             if any(rx.fullmatch(n) for n in names) else 'it matches no parameter')
      raise ValueError(f'lr_rules regex {regex!r} is never used: {why}. '
                       f'Parameters: {names}')
  return jax.tree_util.tree_unflatten(treedef, mults)


def param_labels(params, rules):
  """Tree of 'frozen' / 'lr*<multiplier>' labels that `rules` (lr_rules) give."""
  return jax.tree.map(lambda m: 'frozen' if m == 0 else f'lr*{m:g}',
                      _lr_multipliers(params, rules))


def _wd_mask(params, regexes):
  """Tree of bools: params whose name fully matches any of `regexes`."""
  names, treedef = _names(params)
  compiled = [re.compile(r) for r in regexes]
  for regex, rx in zip(regexes, compiled):
    if not any(rx.fullmatch(n) for n in names):
      raise ValueError(f'wd_mask regex {regex!r} matches no parameter. '
                       f'Parameters: {names}')
  mask = [any(rx.fullmatch(n) for rx in compiled) for n in names]
  return jax.tree_util.tree_unflatten(treedef, mask)


def _is_masked(x):
  return isinstance(x, optax.MaskedNode)


def _scale_by_tree(factors):
  """Multiplies each update by its static factor; frozen (MaskedNode) leaves pass."""
  def update_fn(updates, state, params=None):
    del params
    updates = jax.tree.map(lambda u, f: u if _is_masked(u) else u * f,
                           updates, factors, is_leaf=_is_masked)
    return updates, state
  return optax.GradientTransformation(lambda _: optax.EmptyState(), update_fn)


# ---------------------------------------------------------------- optimizer


def make_optimizer(config, params_shape_tree, total_steps):
  """Returns (tx, schedule) from config.optimizer and config.schedule.

  `params_shape_tree` (arrays or jax.ShapeDtypeStruct) fixes the param names that
  lr_rules and wd_mask are checked against; `tx` is for params of that structure.
  `tx.update` needs `params` when weight decay is on. `schedule` is the base
  learning rate (before lr_rules multipliers), for logging.
  """
  c = _with_defaults(config.optimizer, _OPTIMIZER_DEFAULTS, 'optimizer')
  schedule = make_schedule(config.schedule, total_steps)
  clip = c['grad_clip_norm']
  if clip is not None and clip < 0:
    raise ValueError(f'grad_clip_norm={clip} must be >= 0 (0 or None = off).')
  mults = _lr_multipliers(params_shape_tree, c['lr_rules'])
  if c['groups']:
    return _make_grouped(c, mults, params_shape_tree, schedule), schedule
  partition = jax.tree.map(lambda m: 'frozen' if m == 0 else 'trainable', mults)
  chain = _branch(c, mults, params_shape_tree, schedule, clip=clip)

  # multi_transform hands each branch only its own leaves (MaskedNode elsewhere),
  # so frozen params hold no state and do not enter the clipping norm.
  tx = optax.multi_transform(
      {'trainable': optax.chain(*chain), 'frozen': optax.set_to_zero()}, partition)
  repeats = int(c['updates_per_step'])
  if repeats < 1:
    raise ValueError(f'updates_per_step={repeats} must be >= 1.')
  if repeats > 1:
    tx = _repeat_update(tx, repeats)
  return tx, schedule


def _branch(c, mults, params_shape_tree, schedule, *, clip=None, what='optimizer'):
  """The chain one group of trainable params gets, mirroring the optax aliases step
  for step so that with no rules the result equals optax.<name>(schedule)."""
  name = _choice(c['name'], OPTIMIZERS, f'{what} name')
  wd = float(c['weight_decay'] or 0.0)
  if wd < 0:
    raise ValueError(f'{what}: weight_decay={wd} must be >= 0.')
  if name == 'adam' and wd:
    raise ValueError(f"{what} 'adam' has no weight decay (weight_decay={wd}); "
                     "use 'adamw' for decoupled decay.")
  chain = []
  if clip:
    chain.append(optax.clip_by_global_norm(float(clip)))
  if name in ('adamw', 'adam', 'lamb'):
    chain.append(optax.scale_by_adam(
        b1=c['b1'], b2=c['b2'], eps=c['eps'], eps_root=0.0))
  elif c['momentum']:
    chain.append(optax.trace(decay=c['momentum'], nesterov=bool(c['nesterov'])))
  if wd:
    mask = _wd_mask(params_shape_tree, _as_regexes(c['wd_mask']))
    if any(jax.tree.leaves(mask)):
      chain.append(optax.add_decayed_weights(wd, mask=mask))
  if name == 'lamb':
    chain.append(optax.scale_by_trust_ratio())
  chain.append(optax.scale_by_learning_rate(schedule))
  if any(m not in (0.0, 1.0) for m in jax.tree.leaves(mults)):
    chain.append(_scale_by_tree(mults))
  return chain


def _make_grouped(c, mults, params_shape_tree, schedule):
  """multi_transform over 'frozen', 'group<i>' and 'default' labels (module docstring)."""
  groups = list(c['groups'])
  for i, g in enumerate(groups):
    if not (isinstance(g, (tuple, list)) and len(g) == 2 and isinstance(g[0], str)
            and hasattr(g[1], 'items')):
      raise ValueError(f'optimizer.groups[{i}] = {g!r} is not a (regex, {{overrides}}) pair.')
    bad = sorted(set(dict(g[1].items())) - set(_GROUP_KEYS))
    if bad:
      raise ValueError(f'optimizer.groups[{i}] ({g[0]!r}) sets {bad}; a group may set '
                       f'{list(_GROUP_KEYS)}.')
  names, treedef = _names(params_shape_tree)
  compiled = [re.compile(g[0]) for g in groups]
  labels = []
  for name, m in zip(names, jax.tree.leaves(mults)):
    if m == 0:
      labels.append('frozen')
      continue
    hit = next((i for i, rx in enumerate(compiled) if rx.fullmatch(name)), None)
    labels.append('default' if hit is None else f'group{hit}')
  for i, g in enumerate(groups):
    if f'group{i}' not in labels:
      raise ValueError(f'optimizer.groups[{i}] regex {g[0]!r} takes no trainable parameter '
                       f'(frozen, taken by an earlier group, or no match). Parameters: {names}')
  partition = jax.tree_util.tree_unflatten(treedef, labels)
  branches = {'frozen': optax.set_to_zero()}
  if 'default' in labels:
    branches['default'] = optax.chain(*_branch(c, mults, params_shape_tree, schedule))
  for i, g in enumerate(groups):
    gc = {**c, **dict(g[1].items())}
    branches[f'group{i}'] = optax.chain(*_branch(
        gc, mults, params_shape_tree, schedule, what=f'optimizer.groups[{i}]'))
  tx = optax.multi_transform(branches, partition)
  clip = c['grad_clip_norm']
  if clip:   # one global norm over every trainable param, whatever its group
    trainable = jax.tree.map(lambda l: l != 'frozen', partition)
    tx = optax.chain(optax.masked(optax.clip_by_global_norm(float(clip)), trainable), tx)
  repeats = int(c['updates_per_step'])
  if repeats < 1:
    raise ValueError(f'updates_per_step={repeats} must be >= 1.')
  return _repeat_update(tx, repeats) if repeats > 1 else tx


def _repeat_update(inner, repeats):
  """`inner` applied `repeats` times to the same gradient; returns the summed update."""

  def update(grads, state, params=None):
    total = None
    for _ in range(repeats):
      updates, state = inner.update(grads, state, params)
      total = updates if total is None else jax.tree.map(jnp.add, total, updates)
      if params is not None:
        params = optax.apply_updates(params, updates)
    return total, state

  return optax.GradientTransformation(inner.init, update)


def tree_map_params(tx, f, state, *rest, transform_non_params=None):
  """optax.tree_map_params that leaves frozen params' MaskedNode in place.

  E.g. the state's shardings from the params' ones:
  `tree_map_params(tx, lambda _, s: s, state, param_shardings,
                   transform_non_params=lambda _: replicated)`.
  """
  return optax.tree_map_params(
      tx, lambda x, *r: x if _is_masked(x) else f(x, *r), state, *rest,
      transform_non_params=transform_non_params, is_leaf=_is_masked)
