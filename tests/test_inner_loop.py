"""The inner-loop helper: it finds a closed-form optimum, resumes exactly, guards NaNs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision import inner_loop

RNG = np.random.default_rng(0)
A = RNG.normal(size=(12, 4)).astype(np.float32)
B = RNG.normal(size=(12,)).astype(np.float32)


def _least_squares(x, rng):
  del rng
  return 0.5 * jnp.sum((A @ x - B) ** 2)


def test_reaches_the_least_squares_solution():
  x, info = inner_loop.run_inner_loop(loss_fn=_least_squares, init=jnp.zeros(4),
                                      tx=optax.adam(0.05), num_steps=1500, log_every=500)
  expected = np.linalg.lstsq(A, B, rcond=None)[0]
  np.testing.assert_allclose(x, expected, atol=1e-3)
  assert info.steps == 1500 and info.resumed_from == 0
  assert info.loss == pytest.approx(0.5 * np.sum((A @ expected - B) ** 2), rel=1e-4)


def _noisy(x, rng):   # stochastic: a resumed job must draw the same noise per step
  return _least_squares(x, rng) + 0.1 * jnp.sum(jax.random.normal(rng, (4,)) * x)


def test_interrupted_job_resumes_bit_identically(tmp_path):
  kw = dict(loss_fn=_noisy, tx=optax.adam(0.05), num_steps=60, save_every=10, log_every=20)
  straight, _ = inner_loop.run_inner_loop(init=jnp.zeros(4), **kw)

  def interrupt(step):
    if step == 35:
      raise KeyboardInterrupt
  directory = str(tmp_path / 'job')
  with pytest.raises(KeyboardInterrupt):
    inner_loop.run_inner_loop(init=jnp.zeros(4), directory=directory, on_step=interrupt, **kw)
  resumed, info = inner_loop.run_inner_loop(init=jnp.zeros(4), directory=directory, **kw)
  assert info.resumed_from == 30 and info.steps == 60
  np.testing.assert_array_equal(resumed, straight)
  # A finished job returns its result without stepping.
  again, info = inner_loop.run_inner_loop(init=jnp.zeros(4), directory=directory, **kw)
  assert info.resumed_from == 60
  np.testing.assert_array_equal(again, straight)


def test_non_finite_loss_keeps_the_last_good_variables(tmp_path):
  def explodes(x, rng):
    del rng
    return jnp.where(x[0] > 0.5, jnp.nan, -jnp.sum(x))   # climbs until it turns NaN

  with pytest.raises(inner_loop.NonFiniteInnerLoss, match=r'non-finite .* at step (\d+)'):
    inner_loop.run_inner_loop(loss_fn=explodes, init=jnp.zeros(2), tx=optax.sgd(0.2),
                              num_steps=50, directory=str(tmp_path / 'j'), save_every=1)
  # The checkpoint left behind holds finite variables of the last good step (x0 = 0.6).
  saved = max(int(p.name) for p in (tmp_path / 'j').iterdir() if p.name.isdigit())
  assert saved == 3
  x, info = inner_loop.run_inner_loop(loss_fn=explodes, init=jnp.zeros(2), tx=optax.sgd(0.2),
                                      num_steps=saved, directory=str(tmp_path / 'j'))
  assert info.resumed_from == 3
  np.testing.assert_allclose(x, [0.6, 0.6], rtol=1e-6)
