"""The reverse process as one `lax.scan`, and classifier-free guidance.

Classifier-free guidance (Ho & Salimans 2022, Eq. 6, written for x_0 predictions as
MDM does): x0 = x0(null) + s (x0(cond) - x0(null)); s = 1 is the conditional model
alone and s = 0 the unconditional one, each needing one network call. `batched_guidance`
runs both passes as one call on the doubled batch.

`sample_loop` runs the kept steps k = K-1 .. 0 of a (possibly respaced) `Diffusion`:
x <- step(x0_pred(x, k), x, k, z_k) with z_k drawn from fold_in(rng, k), ancestral
(DDPM, Ho et al. 2020, Eq. 6-7) or DDIM (Song et al. 2021, Eq. 12), with frames
outside `mask` held at zero.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from jaxvision.diffusion import gaussian


def classifier_free_guidance(cond_fn: Callable[[], jax.Array], uncond_fn: Callable[[], jax.Array],
                             scale: float):
  """x0(null) + scale (x0(cond) - x0(null)); scale 0 or 1 calls one network only."""
  if scale == 0.0:
    return uncond_fn()
  cond = cond_fn()
  if scale == 1.0:
    return cond
  uncond = uncond_fn()
  return uncond + scale * (cond - uncond)


def batched_guidance(net: Callable[..., jax.Array], cond_inputs: tuple, uncond_inputs: tuple,
                     scale: float):
  """`classifier_free_guidance` with both passes as ONE call of `net` on the batch
  [cond; uncond] (every input concatenated on axis 0, the output split back): one
  network call of twice the batch per step instead of two, equal up to float rounding.
  Scale 0 or 1 calls `net` on the one batch it needs."""
  if scale == 0.0:
    return net(*uncond_inputs)
  if scale == 1.0:
    return net(*cond_inputs)
  n = jax.tree.leaves(cond_inputs)[0].shape[0]
  both = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=0), tuple(cond_inputs),
                      tuple(uncond_inputs))
  out = net(*both)
  cond, uncond = out[:n], out[n:]
  return uncond + scale * (cond - uncond)


def sample_loop(predict_x0: Callable[[jax.Array, jax.Array], jax.Array],
                diffusion: gaussian.Diffusion, rng, noise, mask: Optional[jax.Array] = None, *,
                method: str = 'ddpm', eta: float = 0.0):
  """x_0 from x_K = noise. predict_x0(x_t, k) -> x_0 prediction, k (B,) kept-step index.

  mask (B, T) (optional) zeroes frames outside it after every step (and in the noise).
  """
  if method not in ('ddpm', 'ddim'):
    raise ValueError(f"sampling method must be 'ddpm' or 'ddim', got {method!r}")
  b = noise.shape[0]
  mask_f = 1.0 if mask is None else mask.astype(noise.dtype)[..., None]

  def step(x, k):
    t = jnp.full((b,), k, jnp.int32)
    x0 = predict_x0(x, t)
    z = jax.random.normal(jax.random.fold_in(rng, k), x.shape, x.dtype)
    if method == 'ddpm':
      x = diffusion.p_sample(x0, x, t, z)
    else:
      x = diffusion.ddim_sample(x0, x, t, z, eta)
    return x * mask_f, None

  ks = jnp.arange(diffusion.num_steps - 1, -1, -1)
  x, _ = jax.lax.scan(step, noise * mask_f, ks)
  return x
