"""jaxvision.diffusion.gaussian: schedule, q_sample, posterior, respacing, DDIM: closed forms."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.diffusion import gaussian as dl


def test_cosine_betas_follow_alpha_bar():
  d = dl.make_diffusion(1000, 'cosine')
  ab = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
  for t in (0, 1, 500, 998):
    assert d.alphas_cumprod[t] == pytest.approx(ab((t + 1) / 1000) / ab(0), rel=1e-9)
  assert d.betas[-1] == 0.999            # clipped
  assert np.all(np.diff(d.alphas_cumprod) < 0)


def test_q_sample_is_the_closed_form():
  d = dl.make_diffusion(100, 'linear')
  x0 = jnp.asarray(np.random.default_rng(0).normal(size=(3, 5, 4)), jnp.float32)
  noise = jnp.asarray(np.random.default_rng(1).normal(size=(3, 5, 4)), jnp.float32)
  t = jnp.array([0, 40, 99])
  ab = np.cumprod(1 - np.linspace(0.001, 0.2, 100))
  expected = np.sqrt(ab[np.array(t)])[:, None, None] * np.asarray(x0) + \
      np.sqrt(1 - ab[np.array(t)])[:, None, None] * np.asarray(noise)
  np.testing.assert_allclose(d.q_sample(x0, t, noise), expected, rtol=1e-5, atol=1e-6)


def test_posterior_is_bayes_rule_of_the_two_gaussians():
  d = dl.make_diffusion(50, 'cosine')
  rng = np.random.default_rng(2)
  x0, xt = rng.normal(size=(2, 1, 1, 6))
  for t in (1, 10, 49):
    ab_prev, beta = d.alphas_cumprod[t - 1], d.betas[t]
    # q(x_{t-1}|x0) = N(sqrt(ab_prev) x0, 1 - ab_prev); q(x_t|x_{t-1}) = N(sqrt(1-beta) x, beta)
    prec = 1 / (1 - ab_prev) + (1 - beta) / beta
    var = 1 / prec
    mean = var * (np.sqrt(ab_prev) * x0 / (1 - ab_prev) + np.sqrt(1 - beta) * xt / beta)
    m, logv = d.q_posterior(jnp.asarray(x0, jnp.float32), jnp.asarray(xt, jnp.float32),
                            jnp.array([t]))
    np.testing.assert_allclose(m, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.exp(np.asarray(logv)), var, rtol=1e-4)


def test_last_ancestral_step_returns_the_prediction():
  d = dl.make_diffusion(20)
  x0 = jnp.ones((1, 3, 2))
  out = d.p_sample(x0, jnp.zeros((1, 3, 2)) + 5.0, jnp.array([0]), jnp.ones((1, 3, 2)) * 9)
  np.testing.assert_allclose(out, x0, atol=1e-6)


def test_respaced_schedule_keeps_alpha_bar_at_the_kept_steps():
  base = dl.make_diffusion(1000)
  for spacing in ('ddim50', '10,20', [25]):
    sp = dl.respaced(base, spacing)
    kept = np.asarray(sp.timestep_map)
    np.testing.assert_allclose(sp.alphas_cumprod, base.alphas_cumprod[kept], rtol=1e-9)
  assert dl.space_timesteps(1000, 'ddim50') == list(range(0, 1000, 20))
  assert len(dl.space_timesteps(1000, '10,20')) == 30


def test_ddim_with_exact_prediction_recovers_x0():
  d = dl.respaced(dl.make_diffusion(1000), 'ddim10')
  x0 = jnp.asarray(np.random.default_rng(3).normal(size=(1, 4, 3)), jnp.float32)
  noise = jnp.asarray(np.random.default_rng(4).normal(size=(1, 4, 3)), jnp.float32)
  x = d.q_sample(x0, jnp.array([9]), noise)
  for k in range(9, -1, -1):   # deterministic DDIM keeps the same noise direction
    x = d.ddim_sample(x0, x, jnp.array([k]), jnp.zeros_like(x))
  np.testing.assert_allclose(x, x0, atol=1e-4)


def test_masked_mse_normalises_per_sample():
  target = jnp.zeros((2, 4, 3))
  pred = jnp.ones((2, 4, 3)) * jnp.array([1.0, 2.0])[:, None, None]
  mask = jnp.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool)
  np.testing.assert_allclose(dl.masked_mse(target, pred, mask), [1.0, 4.0])
