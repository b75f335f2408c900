"""jaxvision.diffusion.sampling: guidance closed form, the reverse loop against numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.diffusion import gaussian
from jaxvision.diffusion import sampling


def test_classifier_free_guidance_closed_form_and_calls():
  calls = []
  cond = lambda: calls.append('c') or jnp.array([2.0])  # pylint: disable=unnecessary-lambda-assignment
  uncond = lambda: calls.append('u') or jnp.array([0.5])  # pylint: disable=unnecessary-lambda-assignment
  np.testing.assert_allclose(sampling.classifier_free_guidance(cond, uncond, 2.5),
                             [0.5 + 2.5 * 1.5])
  assert sorted(calls) == ['c', 'u']
  calls.clear()
  np.testing.assert_allclose(sampling.classifier_free_guidance(cond, uncond, 1.0), [2.0])
  np.testing.assert_allclose(sampling.classifier_free_guidance(cond, uncond, 0.0), [0.5])
  assert calls == ['c', 'u']   # one network call each


@pytest.mark.parametrize('method', ['ddpm', 'ddim'])
def test_loop_equals_a_numpy_reverse_process(method):
  d = gaussian.respaced(gaussian.make_diffusion(100, 'linear'), 'ddim10')
  rng = jax.random.key(3)
  noise = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 3)), jnp.float32)
  mask = jnp.asarray([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
  predict = lambda x, t: 0.5 * x + 0.01 * t[:, None, None]  # pylint: disable=unnecessary-lambda-assignment
  got = sampling.sample_loop(predict, d, rng, noise, mask, method=method, eta=0.3)

  ab = d.alphas_cumprod
  ab_prev = d.alphas_cumprod_prev
  m = np.asarray(mask, np.float64)[..., None]
  x = np.asarray(noise, np.float64) * m
  for k in range(d.num_steps - 1, -1, -1):
    x0 = 0.5 * x + 0.01 * k
    z = np.asarray(jax.random.normal(jax.random.fold_in(rng, k), x.shape), np.float64)
    if method == 'ddpm':
      mean = d.posterior_mean_coef1[k] * x0 + d.posterior_mean_coef2[k] * x
      x = mean + (k != 0) * np.exp(0.5 * d.posterior_log_variance_clipped[k]) * z
    else:
      eps = (x / np.sqrt(ab[k]) - x0) / np.sqrt(1 / ab[k] - 1)
      sigma = 0.3 * np.sqrt((1 - ab_prev[k]) / (1 - ab[k])) * np.sqrt(1 - ab[k] / ab_prev[k])
      x = (x0 * np.sqrt(ab_prev[k]) + np.sqrt(1 - ab_prev[k] - sigma ** 2) * eps
           + (k != 0) * sigma * z)
    x = x * m
  np.testing.assert_allclose(got, x, atol=1e-4, rtol=1e-4)
  assert np.all(np.asarray(got)[0, 3] == 0)
  with pytest.raises(ValueError, match="'ddpm' or 'ddim'"):
    sampling.sample_loop(predict, d, rng, noise, method='euler')


def test_batched_guidance_is_one_call_equal_to_two():
  calls = []
  rng = np.random.default_rng(0)
  w = jnp.asarray(rng.normal(size=(4, 4)), jnp.float32)

  def net(x, c):
    calls.append(x.shape[0])
    return jnp.tanh(x @ w + c[:, None, None])

  x = jnp.asarray(rng.normal(size=(3, 5, 4)), jnp.float32)
  c = jnp.asarray(rng.normal(size=(3,)), jnp.float32)
  null = jnp.zeros_like(c)
  want = sampling.classifier_free_guidance(lambda: net(x, c), lambda: net(x, null), 2.5)
  calls.clear()
  got = sampling.batched_guidance(net, (x, c), (x, null), 2.5)
  assert calls == [6]                      # one call on the doubled batch
  np.testing.assert_allclose(got, want, atol=1e-6)
  unc = np.tanh(np.asarray(x) @ np.asarray(w))                            # numpy reference
  cond = np.tanh(np.asarray(x) @ np.asarray(w) + np.asarray(c)[:, None, None])
  np.testing.assert_allclose(got, unc + 2.5 * (cond - unc), atol=1e-5)
  calls.clear()
  np.testing.assert_allclose(sampling.batched_guidance(net, (x, c), (x, null), 1.0), net(x, c))
  assert calls[0] == 3
