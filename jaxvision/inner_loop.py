"""Per-example optimisation inside a run of the binary (kind (c) of the project contract).

Adversarial attacks (GLOW), GAN/NeRF inversion (GeneAvatar) and test-time refinement
optimise variables per example (a perturbation, a latent code) against a fixed model.
They run inside an evaluator, through `run_inner_loop`, which gives them what the
binary gives training:

  - a jitted optax step (sharded like its inputs when they are sharded arrays);
  - progress lines with steps/s and ETA every `log_every` steps;
  - the same NaN guard: a non-finite loss or gradient leaves the variables unchanged
    and raises `NonFiniteInnerLoss` naming the step, so nothing bad is saved;
  - resumable checkpoints of long jobs: with a `directory`, the variables, optimizer
    state, step and rng are saved every `save_every` steps (orbax, atomic), and a
    second call with the same directory continues from the newest one (a job that
    already finished returns at once).  Evaluators put it under `ctx.workdir`.

Example (in an evaluator's `run`):

  x, info = inner_loop.run_inner_loop(
      loss_fn=lambda x, rng: attack_loss(model, params, images, x, rng),
      init=jnp.zeros_like(images), tx=optax.adam(1e-2), num_steps=500,
      directory=os.path.join(ctx.workdir, 'attack', 'batch_0'), name='attack')
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable

from absl import logging
import jax
import jax.numpy as jnp
import optax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies


class NonFiniteInnerLoss(FloatingPointError):
  """The inner loss or its gradient became NaN/inf; the variables were not updated."""


@dataclasses.dataclass
class InnerLoopInfo:
  loss: float            # loss at the last step taken (nan if no step was taken)
  steps: int             # total steps done (including those of a resumed job)
  resumed_from: int      # 0 for a fresh job


def _all_finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _hms(seconds: float) -> str:
  seconds = int(seconds)
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def make_inner_step(loss_fn: Callable[[Any, jax.Array], Any], tx: optax.GradientTransformation):
  """(state, ) -> (state, loss, finite) for state {x, opt_state, step, rng}; not jitted."""

  def step(state):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state['rng']), state['step'])
    loss, grads = jax.value_and_grad(lambda x: loss_fn(x, rng))(state['x'])
    updates, opt_state = tx.update(grads, state['opt_state'], state['x'])
    x = optax.apply_updates(state['x'], updates)
    finite = jnp.isfinite(loss) & _all_finite(grads)
    new = dict(state, x=x, opt_state=opt_state, step=state['step'] + 1)
    kept = state
    return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, kept), loss, finite

  return step


def run_inner_loop(*, loss_fn: Callable[[Any, jax.Array], jax.Array], init: Any,
                   tx: optax.GradientTransformation, num_steps: int,
                   directory: str | None = None, save_every: int = 100,
                   log_every: int = 100, name: str = 'inner', seed: int = 0,
                   on_step: Callable[[int], None] | None = None) -> tuple[Any, InnerLoopInfo]:
  """Minimises `loss_fn(x, rng)` over `x` from `init` for `num_steps` steps of `tx`.

  Returns (x, info).  `loss_fn` must return a scalar; `rng` is a fresh key per step
  (`fold_in(key(seed), step)`, so a resumed job draws the same randomness).  With a
  `directory` the job is checkpointed every `save_every` steps and resumed from it.
  `on_step(step)` is called on the host after each step (tests use it to interrupt).
  """
  if num_steps < 0 or save_every < 1 or log_every < 1:
    raise ValueError(f'{name}: num_steps={num_steps} must be >= 0, save_every={save_every} '
                     f'and log_every={log_every} >= 1')
  state = {'x': init, 'opt_state': tx.init(init), 'step': jnp.zeros((), jnp.int32),
           'rng': jax.random.key_data(jax.random.key(seed))}
  manager = None
  resumed_from = 0
  if directory:
    manager = ocp.CheckpointManager(os.path.abspath(directory), options=ocp.CheckpointManagerOptions(
        save_decision_policy=policies.FixedIntervalPolicy(save_every),
        preservation_policy=policies.LatestN(2), enable_async_checkpointing=False))
    latest = manager.latest_step()
    if latest is not None:
      abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
      state = manager.restore(latest, args=ocp.args.StandardRestore(abstract))
      resumed_from = int(latest)
      logging.info('%s: resumed from step %d of %d in %s', name, latest, num_steps, directory)
  step_fn = jax.jit(make_inner_step(loss_fn, tx), donate_argnums=(0,))
  step = int(state['step'])
  loss = float('nan')
  t0, s0 = time.time(), step
  pending = []   # (step, loss, finite) on device, checked at log/save points
  try:
    while step < num_steps:
      state, loss_dev, finite = step_fn(state)
      step += 1
      pending.append((step, loss_dev, finite))
      is_last = step == num_steps
      if step % log_every == 0 or is_last or (manager and step % save_every == 0):
        for s, l, f in jax.device_get(pending):   # the same guard as the train loop
          if not bool(f):
            raise NonFiniteInnerLoss(
                f'{name}: non-finite loss or gradient at step {s} (loss={float(l)}); '
                f'the variables of step {s - 1} were kept'
                + (f'; the newest checkpoint is step {manager.latest_step()}' if manager else ''))
        loss = float(pending[-1][1])
        pending.clear()
        if step % log_every == 0 or is_last:
          rate = (step - s0) / max(time.time() - t0, 1e-9)
          logging.info('%s: step %d/%d, loss %.5g, %.1f steps/s, ETA %s', name, step,
                       num_steps, loss, rate, _hms((num_steps - step) / max(rate, 1e-9)))
        if manager is not None:
          manager.save(step, args=ocp.args.StandardSave(state), force=is_last)
      if on_step is not None:
        on_step(step)
  finally:
    if manager is not None:
      manager.wait_until_finished()
      manager.close()
  return state['x'], InnerLoopInfo(loss=loss, steps=step, resumed_from=resumed_from)
