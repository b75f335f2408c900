"""Sampling: the BPE schedule, classifier-free guidance and the composition sampler.

BPE at inference (Sec. 3.1, `BPE_Schedule`): with T original steps and switch step s,
a step t is absolute (w = 0) while t > T - s and relative (w = 1) after, so the first
s - 1 of the T denoising steps recover global coherence with APE and the rest build
smooth transitions with RPE; s = 0 is all relative, s = -1 all absolute.  FlowMDM uses
s = 125 for Babel and 60 for HumanML3D.  With respaced sampling the rule is applied to
the ORIGINAL step each kept step stands for.

Classifier-free guidance: x0 = x0(null) + scale * (x0(text) - x0(null)), the null
condition being the zeroed text embedding.  (Babel 1.5, HumanML3D 2.5.)  The guidance
and the reverse-process loop are `jaxvision.diffusion.sampling`'s; this module adds
what is FlowMDM's own: the BPE schedule and the composition inputs.

Composition (`DiffusionWrapper_FlowMDM`): N segments with texts and lengths are one
sequence of sum(lengths) frames, denoised jointly; frame i is conditioned on its own
segment's text, absolute positions restart in every segment, and the absolute stage
attends within segments only.

Speed: the guided passes run as one batched network call (`batch_guidance`), and
`sample_in_bucket` pads T to a few bucket lengths so that one compiled sampler serves
many composition lengths; with `model.banded_attention` a step is linear in T.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax.numpy as jnp
import numpy as np

from jaxvision.diffusion import gaussian as diffusion_lib
from jaxvision.diffusion import sampling as sampling_lib


def bpe_weight(original_t, num_original_steps: int, switch_step):
  """w in {0, 1} per sample: 0 = absolute (APE), 1 = relative (RPE).

  `switch_step` may be a traced integer (one compiled sampler serves every schedule).
  """
  t = jnp.asarray(original_t)
  if isinstance(switch_step, int) and not (switch_step in (-1, 0) or
                                           0 < switch_step <= num_original_steps):
    raise ValueError(f'BPE switch step must be -1, 0 or in (0, {num_original_steps}], '
                     f'got {switch_step}')
  s = jnp.asarray(switch_step, jnp.int32)
  relative = jnp.where(s == -1, False, jnp.where(s == 0, True, ~(t > num_original_steps - s)))
  return relative.astype(jnp.float32)


def composition_inputs(lengths: Sequence[int]):
  """segment_ids (1, sum) and mask (1, sum) for one composition of segments."""
  lengths = [int(n) for n in lengths]
  if not lengths or min(lengths) < 1:
    raise ValueError(f'segment lengths must be positive, got {lengths}')
  ids = np.repeat(np.arange(len(lengths)), lengths)[None].astype(np.int32)
  return ids, np.ones_like(ids, dtype=bool)


def batch_compositions(lengths_list: Sequence[Sequence[int]]):
  """Pads several compositions to one batch: segment_ids (B, T) (-1 = pad), mask."""
  total = max(sum(ls) for ls in lengths_list)
  ids = np.full((len(lengths_list), total), -1, np.int32)
  for b, ls in enumerate(lengths_list):
    ids[b, :sum(ls)] = np.repeat(np.arange(len(ls)), ls)
  return ids, ids >= 0


def bucket_length(t: int, base: int = 64) -> int:
  """The smallest bucket >= t among base * {1, 1.5} * 2^k (at most 1/3 padding, two
  buckets per octave): compositions of nearby lengths share one compiled sampler."""
  if t < 1:
    raise ValueError(f'sequence length must be positive, got {t}')
  size = base
  while True:
    for b in (size, size * 3 // 2):
      if b >= t:
        return b
    size *= 2


def sample_in_bucket(sample: Callable, rng, noise, text_emb, segment_ids, mask, *,
                     base: int = 64, **kw):
  """Calls a (jitted) `sample` with the time axis padded to `bucket_length` (padded frames:
  segment -1, mask False, zero noise) and returns the first T frames, so one compilation
  serves every length of a bucket. The padding is masked out of attention, so the valid
  frames see what they would unpadded (the per-step noise is drawn at the padded shape)."""
  t = noise.shape[1]
  pad = bucket_length(t, base) - t
  if pad:
    noise = jnp.pad(noise, ((0, 0), (0, pad), (0, 0)))
    segment_ids = jnp.pad(jnp.asarray(segment_ids), ((0, 0), (0, pad)), constant_values=-1)
    mask = jnp.pad(jnp.asarray(mask, bool), ((0, 0), (0, pad)))
  return sample(rng, noise, text_emb, segment_ids, mask, **kw)[:, :t]


def make_sampler(denoise_fn: Callable, diffusion: diffusion_lib.Diffusion, *,
                 num_original_steps: int, bpe_switch_step: int, guidance_scale: float,
                 method: str = 'ddpm', eta: float = 0.0, batch_guidance: bool = True):
  """Returns sample(rng, noise, text_emb, segment_ids, mask, switch_step=None) -> x_0.

  `denoise_fn(x_t, original_t, text_emb, segment_ids, mask, bpe_w) -> x_0 prediction`.
  `switch_step` (may be traced) overrides `bpe_switch_step` for one call.
  Guidance 1.0 (or 0.0: unconditional) skips the second network call; otherwise
  `batch_guidance` runs the conditional and unconditional passes as one call on the
  doubled batch (False: two calls; equal up to float rounding).
  """
  if method not in ('ddpm', 'ddim'):
    raise ValueError(f"sampling method must be 'ddpm' or 'ddim', got {method!r}")
  timestep_map = jnp.asarray(diffusion.timestep_map, jnp.int32)

  def sample(rng, noise, text_emb, segment_ids, mask, switch_step=None):
    switch = bpe_switch_step if switch_step is None else switch_step
    null = jnp.zeros_like(text_emb)

    def predict_x0(x, t):
      t_orig = timestep_map[t]
      w = bpe_weight(t_orig, num_original_steps, switch)
      if batch_guidance:
        return sampling_lib.batched_guidance(
            denoise_fn, (x, t_orig, text_emb, segment_ids, mask, w),
            (x, t_orig, null, segment_ids, mask, w), guidance_scale)
      return sampling_lib.classifier_free_guidance(
          lambda: denoise_fn(x, t_orig, text_emb, segment_ids, mask, w),
          lambda: denoise_fn(x, t_orig, null, segment_ids, mask, w), guidance_scale)

    return sampling_lib.sample_loop(predict_x0, diffusion, rng, noise, mask, method=method,
                                    eta=eta)

  return sample
