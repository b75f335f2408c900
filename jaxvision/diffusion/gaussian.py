"""Gaussian diffusion (Ho et al. 2020; guided-diffusion / MDM code), shared by generators.

First written for FlowMDM (`jaxvision.projects.flowmdm`), which trains and samples it
as below; any method with a diffusion generator uses it from here.

- Noise schedule: cosine (Nichol & Dhariwal 2021), alpha_bar(t) = cos^2((t/T + 0.008) /
  1.008 * pi / 2), betas clipped at 0.999; or linear (Ho et al.), scaled to T steps.
- The network predicts x_0 (`START_X`); posterior variance FIXED_SMALL (the true
  posterior's, log clipped at step 0) or FIXED_LARGE (betas).
- Training loss: MSE on x_0 masked to the valid frames, normalised per sample by its
  number of valid entries (`masked_mse`; the caller averages over the batch).
- Respacing (`respaced`): keep a subset of the steps and recompute betas from
  alpha_bar at the kept steps, so ancestral sampling with fewer steps is consistent
  (guided-diffusion's `SpacedDiffusion`); `timestep_map` gives the ORIGINAL step a
  kept step corresponds to (the network and the BPE schedule see original steps).
- DDIM update (Song et al. 2021, eq. 12) with eta.
Schedules are computed in float64 with numpy, as upstream, and cast when used.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np


def cosine_betas(num_steps: int, max_beta: float = 0.999) -> np.ndarray:
  def alpha_bar(t):
    return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
  return np.array([min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta)
                   for i in range(num_steps)], dtype=np.float64)


def linear_betas(num_steps: int) -> np.ndarray:
  scale = 1000 / num_steps
  return np.linspace(scale * 0.0001, scale * 0.02, num_steps, dtype=np.float64)


def named_betas(name: str, num_steps: int) -> np.ndarray:
  if name == 'cosine':
    return cosine_betas(num_steps)
  if name == 'linear':
    return linear_betas(num_steps)
  raise ValueError(f"unknown noise schedule {name!r}; use 'cosine' or 'linear'")


@dataclasses.dataclass(frozen=True)
class Diffusion:
  """Schedule arrays (float64, numpy) and the closed-form steps built on them."""
  betas: np.ndarray
  timestep_map: np.ndarray          # kept step k -> original step
  variance: str = 'fixed_small'     # 'fixed_small' | 'fixed_large'

  def __post_init__(self):
    if self.betas.ndim != 1 or not np.all((self.betas > 0) & (self.betas <= 1)):
      raise ValueError('betas must be a 1-D array in (0, 1]')
    if self.variance not in ('fixed_small', 'fixed_large'):
      raise ValueError(f"variance must be 'fixed_small' or 'fixed_large', got {self.variance!r}")

  @property
  def num_steps(self) -> int:
    return len(self.betas)

  @property
  def alphas_cumprod(self):
    return np.cumprod(1.0 - self.betas)

  @property
  def alphas_cumprod_prev(self):
    return np.append(1.0, self.alphas_cumprod[:-1])

  @property
  def posterior_variance(self):
    return self.betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)

  @property
  def posterior_log_variance_clipped(self):
    pv = self.posterior_variance
    return np.log(np.append(pv[1], pv[1:]))

  @property
  def posterior_mean_coef1(self):
    return self.betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)

  @property
  def posterior_mean_coef2(self):
    return (1.0 - self.alphas_cumprod_prev) * np.sqrt(1.0 - self.betas) / (1.0 - self.alphas_cumprod)

  def _take(self, arr, t, x):
    v = jnp.asarray(arr, jnp.float32)[t]
    return v.reshape(v.shape + (1,) * (x.ndim - v.ndim))

  def q_sample(self, x0, t, noise):
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise."""
    ab = self.alphas_cumprod
    return self._take(np.sqrt(ab), t, x0) * x0 + self._take(np.sqrt(1.0 - ab), t, x0) * noise

  def q_posterior(self, x0, x_t, t):
    """Mean and log-variance of q(x_{t-1} | x_t, x_0)."""
    mean = (self._take(self.posterior_mean_coef1, t, x_t) * x0 +
            self._take(self.posterior_mean_coef2, t, x_t) * x_t)
    return mean, self._take(self.posterior_log_variance_clipped, t, x_t)

  def p_log_variance(self, t, x):
    if self.variance == 'fixed_small':
      return self._take(self.posterior_log_variance_clipped, t, x)
    large = np.append(self.posterior_variance[1], self.betas[1:])
    return self._take(np.log(large), t, x)

  def p_sample(self, x0_pred, x_t, t, noise):
    """Ancestral step x_t -> x_{t-1} given the predicted x_0 (no noise at t = 0)."""
    mean, _ = self.q_posterior(x0_pred, x_t, t)
    log_var = self.p_log_variance(t, x_t)
    nonzero = (t != 0).astype(x_t.dtype).reshape((-1,) + (1,) * (x_t.ndim - 1))
    return mean + nonzero * jnp.exp(0.5 * log_var) * noise

  def ddim_sample(self, x0_pred, x_t, t, noise, eta: float = 0.0):
    """DDIM step x_t -> x_{t-1} given the predicted x_0 (eta = 0: deterministic)."""
    ab = self._take(self.alphas_cumprod, t, x_t)
    ab_prev = self._take(self.alphas_cumprod_prev, t, x_t)
    eps = (x_t / jnp.sqrt(ab) - x0_pred) / jnp.sqrt(1.0 / ab - 1.0)
    sigma = eta * jnp.sqrt((1 - ab_prev) / (1 - ab)) * jnp.sqrt(1 - ab / ab_prev)
    mean = x0_pred * jnp.sqrt(ab_prev) + jnp.sqrt(1 - ab_prev - sigma ** 2) * eps
    nonzero = (t != 0).astype(x_t.dtype).reshape((-1,) + (1,) * (x_t.ndim - 1))
    return mean + nonzero * sigma * noise


def make_diffusion(num_steps: int = 1000, schedule: str = 'cosine',
                   variance: str = 'fixed_small') -> Diffusion:
  return Diffusion(named_betas(schedule, num_steps), np.arange(num_steps), variance)


def space_timesteps(num_steps: int, spacing) -> list[int]:
  """guided-diffusion's `space_timesteps`: 'ddimN' (stride) or section counts."""
  if isinstance(spacing, str) and spacing.startswith('ddim'):
    desired = int(spacing[len('ddim'):])
    for stride in range(1, num_steps):
      if len(range(0, num_steps, stride)) == desired:
        return list(range(0, num_steps, stride))
    raise ValueError(f'cannot create exactly {desired} steps with an integer stride')
  counts = [int(c) for c in (spacing.split(',') if isinstance(spacing, str) else spacing)]
  size_per, extra = divmod(num_steps, len(counts))
  start, out = 0, []
  for i, count in enumerate(counts):
    size = size_per + (1 if i < extra else 0)
    if size < count:
      raise ValueError(f'cannot divide a section of {size} steps into {count}')
    frac = 1 if count <= 1 else (size - 1) / (count - 1)
    cur = 0.0
    for _ in range(count):
      out.append(start + round(cur))
      cur += frac
    start += size
  return sorted(set(out))


def respaced(base: Diffusion, spacing) -> Diffusion:
  """A diffusion over a subset of `base`'s steps with consistent betas."""
  keep = space_timesteps(base.num_steps, spacing)
  last, betas = 1.0, []
  for i, ab in enumerate(base.alphas_cumprod):
    if i in keep:
      betas.append(1 - ab / last)
      last = ab
  return Diffusion(np.array(betas), np.asarray(base.timestep_map)[keep], base.variance)


def masked_mse(target, pred, mask):
  """Per sample: sum over valid frames and channels / (valid frames * channels)."""
  mask = mask.astype(target.dtype)
  err = jnp.sum(((target - pred) ** 2) * mask[..., None], axis=(1, 2))
  return err / jnp.maximum(jnp.sum(mask, axis=1) * target.shape[-1], 1.0)
