"""The train state, created already sharded, and the jitted train step.

The state is a plain dict — `step`, `params`, `opt_state`, `rng` (raw key data, so it
checkpoints as an array) — so orbax saves and restores it without custom types.

Creation follows big_vision: shapes first (`jax.eval_shape`), shardings from the
parameters' logical axis names, then `jax.jit(init, out_shardings=...)` builds the
parameters and optimizer state directly on their devices; no host copy of a big model.
The optimizer state gets the sharding of the parameter each of its leaves belongs to
(`optax.tree_map_params`); scalars (counts) are replicated.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

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


def make_state_setup(*, model: nn.Module, tx: optax.GradientTransformation,
                     init_params: Callable[..., Any],
                     dummy_batch: dict[str, jax.ShapeDtypeStruct],
                     mesh: Mesh, rules) -> StateSetup:
  """Shapes, shardings and a sharded initialiser for `{step, params, opt_state, rng}`.

  `dummy_batch` gives the shapes of a batch `init_params` is traced with (zeros).
  """

  def boxed_params(rng):
    batch = {k: jnp.zeros(s.shape, s.dtype) for k, s in dummy_batch.items()}
    return init_params(model, rng, batch)

  def init_state(rng):
    params = nn.meta.unbox(boxed_params(jax.random.fold_in(rng, 0)))
    return {
        'step': jnp.zeros((), jnp.int32),
        'params': params,
        'opt_state': tx.init(params),
        'rng': jax.random.key_data(jax.random.fold_in(rng, 1)),
    }

  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    key = jax.random.key(0)
    boxed = jax.eval_shape(boxed_params, key)
    param_shardings = sharding_lib.logical_shardings(boxed, mesh, rules)
    abstract = jax.eval_shape(init_state, key)
  repl = sharding_lib.replicated(mesh)
  opt_shardings = optim.tree_map_params(tx, lambda _, s: s, abstract['opt_state'],
                                        param_shardings, transform_non_params=lambda _: repl)
  shardings = {'step': repl, 'params': param_shardings, 'opt_state': opt_shardings,
               'rng': repl}
  abstract_state = jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)

  def init(rng):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jax.jit(init_state, out_shardings=shardings)(rng)

  return StateSetup(abstract_state=abstract_state, shardings=shardings,
                    param_shardings=param_shardings, param_logical_shapes=boxed, init=init)


def _all_finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def make_train_step(*, loss_fn: Callable[..., Any], model: nn.Module, config: Any,
                    tx: optax.GradientTransformation, schedule: optax.Schedule):
  """(state, batch) -> (new_state, metrics); not yet jitted.

  The step's rng is `fold_in(state.rng, step)`, so a resumed run draws the same
  randomness.  A non-finite loss or gradient leaves the state unchanged (the host
  stops the run at its next check and names the step): nothing bad reaches a checkpoint.
  """

  def step_fn(state, batch):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state['rng']), state['step'])

    def loss_only(params):
      return loss_fn(params, batch, rng, model=model, config=config)

    (loss, aux), grads = jax.value_and_grad(loss_only, has_aux=True)(state['params'])
    updates, opt_state = tx.update(grads, state['opt_state'], state['params'])
    params = optax.apply_updates(state['params'], updates)
    finite = jnp.isfinite(loss) & _all_finite(grads)
    new = {'step': state['step'] + 1, 'params': params, 'opt_state': opt_state,
           'rng': state['rng']}
    kept = dict(state, step=state['step'] + 1)
    new_state = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, kept)
    metrics = dict(aux)
    metrics.update(loss=loss, grad_norm=optax.tree.norm(grads),
                   learning_rate=schedule(state['step']), finite=finite)
    return new_state, metrics

  return step_fn
