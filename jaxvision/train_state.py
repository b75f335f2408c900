"""The train state, created already sharded, and the jitted train step.

The state is a plain dict — `step`, `params`, `opt_state`, `rng` (raw key data, so it
checkpoints as an array) — so orbax saves and restores it without custom types.  It
grows with what a method needs, each entry sharded and checkpointed like the rest:
  - one entry per mutable variable collection the project declares (`batch_stats` of
    BatchNorm), updated by the loss function's second output;
  - `ema`: an exponential moving average (EMA / teacher) of the params whose names
    match `config.ema.params`, as a sub-tree of the params (only those leaves),
    updated every `config.ema.every` steps;
  - frozen params hold no optimizer state (optim.py: `MaskedNode` in `opt_state`).

Creation follows big_vision: shapes first (`jax.eval_shape`), shardings from the
parameters' logical axis names, then `jax.jit(init, out_shardings=...)` builds the
parameters and optimizer state directly on their devices; no host copy of a big model.
The optimizer state gets the sharding of the parameter each of its leaves belongs to
(`optax.tree_map_params`); scalars (counts) are replicated.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import Mesh
import optax

from jaxvision import optim
from jaxvision import sharding as sharding_lib


@dataclasses.dataclass
class StateSetup:
  """Everything derived from the model and optimizer that the loop needs."""
  abstract_state: Any          # ShapeDtypeStructs carrying their shardings
  shardings: Any               # NamedShardings, the structure of the state
  param_shardings: Any
  param_logical_shapes: Any    # boxed abstract params (logical names), for overviews
  init: Callable[[jax.Array], Any]  # rng key -> sharded state


@dataclasses.dataclass(frozen=True)
class EmaConfig:
  """`config.ema`: decay 0 = no EMA; `params` a regex on '/'-joined param names."""
  decay: float = 0.0
  every: int = 1
  params: str = '.*'

  @classmethod
  def from_config(cls, cfg) -> 'EmaConfig | None':
    if cfg is None or not float(cfg.decay):
      return None
    decay, every = float(cfg.decay), int(cfg.every)
    if not 0.0 < decay < 1.0:
      raise ValueError(f'config.ema.decay={decay} must be in (0, 1) (0 = off)')
    if every < 1:
      raise ValueError(f'config.ema.every={every} must be >= 1')
    return cls(decay=decay, every=every, params=str(cfg.params))


# ------------------------------------------------------------------ named sub-trees


def path_name(path) -> str:
  """'/'-joined name of a key path ('Transformer/encoderblock_0/.../kernel')."""
  return jax.tree_util.keystr(path, simple=True, separator='/')


def select(tree: Any, regexes: str | Sequence[str], what: str = 'regex') -> dict:
  """The nested-dict sub-tree of `tree` whose leaf names fully match any of `regexes`.

  Raises ValueError naming a regex that matches nothing (a typo must not select
  nothing silently).
  """
  regexes = [regexes] if isinstance(regexes, str) else list(regexes)
  compiled = [re.compile(r) for r in regexes]
  out: dict = {}
  used = [False] * len(compiled)
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    name = path_name(path)
    hits = [i for i, rx in enumerate(compiled) if rx.fullmatch(name)]
    if not hits:
      continue
    for i in hits:
      used[i] = True
    node = out
    keys = [_dict_key(k, name) for k in path]
    for k in keys[:-1]:
      node = node.setdefault(k, {})
    node[keys[-1]] = leaf
  for regex, was_used in zip(regexes, used):
    if not was_used:
      names = [path_name(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree)]
      raise ValueError(f'{what} {regex!r} matches no leaf; leaves: {names[:20]}'
                       f'{" ..." if len(names) > 20 else ""}')
  return out


def merge(tree: Any, sub: dict) -> Any:
  """`tree` with the leaves of the nested-dict `sub` (from `select`) put in."""
  if not isinstance(sub, dict):
    return sub
  out = dict(tree)
  for k, v in sub.items():
    out[k] = merge(tree[k], v)
  return out


def _dict_key(entry, name: str) -> str:
  if not isinstance(entry, jax.tree_util.DictKey):
    raise ValueError(f'{name!r}: only dict sub-trees can be selected by name, found {entry!r}')
  return entry.key


# ------------------------------------------------------------------ the state


def make_state_setup(*, model: nn.Module, tx: optax.GradientTransformation,
                     init_params: Callable[..., Any],
                     dummy_batch: dict[str, jax.ShapeDtypeStruct],
                     mesh: Mesh, rules, mutable: Sequence[str] = (),
                     ema: EmaConfig | None = None) -> StateSetup:
  """Shapes, shardings and a sharded initialiser for `{step, params, opt_state, rng, ...}`.

  `dummy_batch` gives the shapes of a batch `init_params` is traced with (zeros).  With
  `mutable` collections, `init_params` returns the variables dict
  ({'params': ..., <collection>: ...}); each collection becomes a state entry.
  """
  mutable = tuple(mutable)

  def boxed_variables(rng):
    batch = {k: jnp.zeros(s.shape, s.dtype) for k, s in dummy_batch.items()}
    out = init_params(model, rng, batch)
    if not mutable:
      return {'params': out}
    missing = [c for c in ('params',) + mutable if c not in out]
    if missing:
      raise ValueError(f'init_params returned collections {sorted(out)}; the project '
                       f'declares mutable={mutable}, so {missing} are missing')
    return {c: out[c] for c in ('params',) + mutable}

  def init_state(rng):
    variables = nn.meta.unbox(boxed_variables(jax.random.fold_in(rng, 0)))
    params = variables['params']
    state = {
        'step': jnp.zeros((), jnp.int32),
        'params': params,
        'opt_state': tx.init(params),
        'rng': jax.random.key_data(jax.random.fold_in(rng, 1)),
    }
    for c in mutable:
      state[c] = variables[c]
    if ema is not None:
      state['ema'] = select(params, ema.params, 'config.ema.params')
    return state

  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    key = jax.random.key(0)
    boxed_all = jax.eval_shape(boxed_variables, key)
    var_shardings = sharding_lib.logical_shardings(boxed_all, mesh, rules)
    param_shardings = var_shardings['params']
    abstract = jax.eval_shape(init_state, key)
  repl = sharding_lib.replicated(mesh)
  opt_shardings = optim.tree_map_params(tx, lambda _, s: s, abstract['opt_state'],
                                        param_shardings, transform_non_params=lambda _: repl)
  shardings = {'step': repl, 'params': param_shardings, 'opt_state': opt_shardings,
               'rng': repl}
  for c in mutable:
    shardings[c] = var_shardings[c]
  if ema is not None:
    shardings['ema'] = select(param_shardings, ema.params, 'config.ema.params')
  abstract_state = jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)

  def init(rng):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jax.jit(init_state, out_shardings=shardings)(rng)

  return StateSetup(abstract_state=abstract_state, shardings=shardings,
                    param_shardings=param_shardings, param_logical_shapes=boxed_all['params'],
                    init=init)


def eval_variables(state: dict, mutable: Sequence[str] = (), use_ema: bool = False) -> Any:
  """What evaluators' `run` gets: the params (EMA ones merged in if `use_ema`), or with
  mutable collections the variables dict {'params': ..., <collection>: ...}."""
  params = state['params']
  if use_ema:
    if 'ema' not in state:
      raise ValueError('config.ema.evaluate is set but the EMA is off (config.ema.decay=0)')
    params = merge(params, state['ema'])
  if not mutable:
    return params
  return {'params': params, **{c: state[c] for c in mutable}}


def _all_finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def make_train_step(*, loss_fn: Callable[..., Any], model: nn.Module, config: Any,
                    tx: optax.GradientTransformation, schedule: optax.Schedule,
                    mutable: Sequence[str] = (), ema: EmaConfig | None = None):
  """(state, batch) -> (new_state, metrics); not yet jitted.

  The step's rng is `fold_in(state.rng, step)`, so a resumed run draws the same
  randomness.  A non-finite loss or gradient leaves the state unchanged (the host
  stops the run at its next check and names the step): nothing bad reaches a checkpoint.
  With `mutable` collections the loss function gets them (`collections=`) and returns
  `(loss, (metrics, new_collections))`.  The EMA is updated after the parameters, on
  steps (counted from 1) divisible by `ema.every`.
  """
  mutable = tuple(mutable)

  def step_fn(state, batch):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state['rng']), state['step'])

    def loss_only(params):
      if not mutable:
        return loss_fn(params, batch, rng, model=model, config=config)
      return loss_fn(params, batch, rng, model=model, config=config,
                     collections={c: state[c] for c in mutable})

    (loss, aux), grads = jax.value_and_grad(loss_only, has_aux=True)(state['params'])
    if mutable:
      aux, new_collections = aux
      if set(new_collections) != set(mutable):
        raise ValueError(f'loss_fn returned collections {sorted(new_collections)}; '
                         f'the project declares mutable={mutable}')
    updates, opt_state = tx.update(grads, state['opt_state'], state['params'])
    params = optax.apply_updates(state['params'], updates)
    finite = jnp.isfinite(loss) & _all_finite(grads)
    new = dict(state, step=state['step'] + 1, params=params, opt_state=opt_state)
    for c in mutable:
      new[c] = new_collections[c]
    if ema is not None:
      due = (state['step'] + 1) % ema.every == 0
      current = select(params, ema.params)
      new['ema'] = jax.tree.map(
          lambda e, p: jnp.where(due, ema.decay * e + (1.0 - ema.decay) * p, e).astype(e.dtype),
          state['ema'], current)
    kept = dict(state, step=state['step'] + 1)
    new_state = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, kept)
    metrics = dict(aux)
    metrics.update(loss=loss, grad_norm=optax.tree.norm(grads),
                   learning_rate=schedule(state['step']), finite=finite)
    return new_state, metrics

  return step_fn
