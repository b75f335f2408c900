"""FroFA augmentation policies: one op, sequences of ops, RandAugment / TrivialAugment.

A *stage* is one FroFA (Sec. 3 of Bär et al., CVPR 2024):

    af = t_{x->f} ∘ a_x ∘ t_{f->x} (f)

with an op `a_x` from `OPS`, a variant ('default' FroFA: one random parameter per map;
'c' cFroFA: one per channel; 'c2' c²FroFA: one per channel and per-channel min/max
maps, see `mapping.py`; 'e' / 'e2' element-wise FroFA: one per element, global /
per-channel min/max, pointwise ops only), a `magnitude` (the op's sampling range, table
below) and an apply probability `prob` (drawn per map, per channel for 'c'/'c2', per
element for 'e'/'e2').

A *policy* combines stages:
  'sequence'        every stage in order, each with its own maps (e.g. the paper's best
                    1-shot setting, brightness c² -> posterize c)
  'randaugment'     `num_ops` stages drawn uniformly with replacement, each at its own
                    magnitude (Cubuk et al. 2020)
  'trivialaugment'  one stage drawn uniformly, its magnitude scaled by u ~ U[0, 1]
                    (Müller & Hutter 2021)
then optionally mixup over the batch.  Everything is pure JAX: `augment_batch` draws an
independent key per example (vmap), so it runs inside the jitted train step.

Magnitudes (m) and the parameter drawn from them:
  brightness, contrast, sharpness   factor ~ U[max(0, 1 - m), 1 + m]          (m=0.9)
  posterize                         bits ~ U{8 - m, ..., 8}                      (m=4)
  solarize                          threshold ~ U[256 (1 - m), 256] (uint8 units) (m=1)
  equalize, invert, autocontrast    none (only prob)
  rotate                            degrees ~ U[-m, m]                          (m=30)
  shear_x, shear_y                  level ~ U[-m, m]                            (m=0.3)
  translate_x, translate_y          pixels ~ U[-m, m] * grid side               (m=0.25)
  crop                              side (1 - m) * grid, integer offset          (m=0.25)
  resized_crop                      side ~ U[1 - m, 1] * grid, any offset         (m=0.5)
  inception_crop                    area ~ U[1 - m, 1], aspect ~ logU[3/4, 4/3]^m (m=0.75)
  cutout                            square side round(m * grid / 2) * 2, any centre (m=0.36)
  jpeg                              quality ~ U[max(1, 100 (1 - m)), 100]        (m=0.75)
  patch_dropout                     drops round(m N) of N tokens (last stage only) (m=0.5)
m = 0 is the identity (jpeg: quality 100), so TrivialAugment's draw at u * m makes
sense for every op.

`magnitude_sampling` (policy key): 'uniform' (above, the default) or 'fixed' — big_vision's
RandAugment, where a level maps to ONE value (`pp/autoaugment.py` `level_to_arg`), here
the value big_vision gives at the level our default magnitude stands for (level 10):
brightness / contrast / sharpness factor 1 + m (1.9), posterize 8 - m bits (4), rotate /
shear / translate ±m with a random sign, jpeg quality max(1, 100 (1 - m)); solarize as
big_vision literally does, threshold 256 m (so m = 1, level 10, leaves the map unchanged);
crops, cutout and patch dropout draw positions as before.  The paper speaks of
augmentation *levels* (brightness c²FroFA "robust to the level"), i.e. big_vision's
fixed-value mapping; 'uniform' is this project's first choice (README, Decisions).  The defaults are big_vision's RandAugment ranges at level 10 (enhance ops 0.1..1.9,
rotate 30 deg, shear 0.3, cutout 40/224 of the side), rescaled to grid units.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxvision.data.augment import other as ops_other
from jaxvision.data.augment import pointwise as pw
from jaxvision.data.augment import spatial as sp
from jaxvision.projects.frofa import mapping

POLICIES = ('none', 'sequence', 'randaugment', 'trivialaugment')


@dataclasses.dataclass(frozen=True)
class Op:
  """sample(key, m, h, w) -> parameter array; apply(x, p, ctx) -> x.

  kind: 'pointwise' ops accept per-channel (C,) parameters directly; 'spatial' ops take
  one parameter vector and are vmapped over channels for per-channel draws; 'tokens'
  (patch dropout) ends the pipeline.
  """
  kind: str
  sample: Callable[..., jax.Array]
  apply: Callable[..., jax.Array]
  default_magnitude: float
  fixed: Callable[..., jax.Array] | None = None   # big_vision's level -> value (or sample)


def _uniform(key, lo, hi):
  return jax.random.uniform(key, (), jnp.float32, lo, hi)


# Samplers: (key, m, h, w) -> parameter.  m may be traced (TrivialAugment draws m * u);
# m = 0 gives the identity (jpeg: quality 100).


def _factor(key, m, h, w):
  del h, w
  return _uniform(key, jnp.maximum(0.0, 1.0 - m), 1.0 + m)


def _symmetric(key, m, h, w):
  del h, w
  return _uniform(key, -m, m)


def _pixels(key, m, h, w):
  del h
  return _uniform(key, -m, m) * w


def _pixels_y(key, m, h, w):
  del w
  return _uniform(key, -m, m) * h


def _none(key, m, h, w):
  del key, m, h, w
  return jnp.zeros((), jnp.float32)


def _posterize_bits(key, m, h, w):
  del h, w
  lo = 8 - jnp.round(jnp.clip(m, 0, 8)).astype(jnp.int32)
  return jax.random.randint(key, (), lo, 9).astype(jnp.float32)


def _threshold(key, m, h, w):
  del h, w
  return _uniform(key, 256.0 * (1.0 - m), 256.0)


def _quality(key, m, h, w):
  del h, w
  return jnp.floor(_uniform(key, jnp.maximum(1.0, 100.0 * (1.0 - m)), 101.0))


# big_vision's fixed values (magnitude_sampling='fixed'); signs are random where
# big_vision's `_randomly_negate_tensor` makes them so.
def _fixed_factor(key, m, h, w):
  del key, h, w
  return jnp.asarray(1.0 + m, jnp.float32)


def _random_sign(key):
  return jnp.where(jax.random.bernoulli(key), 1.0, -1.0)


def _fixed_symmetric(key, m, h, w):
  del h, w
  return _random_sign(key) * m


def _fixed_pixels(key, m, h, w):
  del h
  return _random_sign(key) * m * w


def _fixed_pixels_y(key, m, h, w):
  del w
  return _random_sign(key) * m * h


def _fixed_bits(key, m, h, w):
  del key, h, w
  return (8 - jnp.round(jnp.clip(m, 0, 8))).astype(jnp.float32)


def _fixed_threshold(key, m, h, w):
  del key, h, w
  return jnp.asarray(256.0 * m, jnp.float32)


def _fixed_quality(key, m, h, w):
  del key, h, w
  return jnp.floor(jnp.maximum(1.0, 100.0 * (1.0 - m)))


def _crop_box(key, m, h, w):
  ch = jnp.clip(jnp.round((1.0 - m) * h), 1, h)
  cw = jnp.clip(jnp.round((1.0 - m) * w), 1, w)
  ky, kx = jax.random.split(key)
  y0 = jnp.floor(_uniform(ky, 0.0, 1.0) * (h - ch + 1))
  x0 = jnp.floor(_uniform(kx, 0.0, 1.0) * (w - cw + 1))
  return jnp.stack([y0, x0, ch, cw]).astype(jnp.float32)


def _resized_crop_box(key, m, h, w):
  ks, ky, kx = jax.random.split(key, 3)
  s = _uniform(ks, 1.0 - m, 1.0)
  ch, cw = s * h, s * w
  return jnp.stack([_uniform(ky, 0.0, 1.0) * (h - ch), _uniform(kx, 0.0, 1.0) * (w - cw),
                    ch, cw])


def _inception_box(key, m, h, w):
  ka, kr, ky, kx = jax.random.split(key, 4)
  area = _uniform(ka, 1.0 - m, 1.0) * h * w
  ratio = jnp.exp(_uniform(kr, math.log(3 / 4), math.log(4 / 3)) * jnp.minimum(m, 1.0))
  ch = jnp.minimum(jnp.sqrt(area / ratio), h)
  cw = jnp.minimum(jnp.sqrt(area * ratio), w)
  return jnp.stack([_uniform(ky, 0.0, 1.0) * (h - ch), _uniform(kx, 0.0, 1.0) * (w - cw),
                    ch, cw])


def _cutout_params(key, m, h, w):
  half = jnp.round(m * min(h, w) / 2)
  ky, kx = jax.random.split(key)
  return jnp.stack([jax.random.randint(ky, (), 0, h), jax.random.randint(kx, (), 0, w),
                    half]).astype(jnp.float32)


def _pointwise(fn, **fixed):
  def apply(x, p, ctx):
    return fn(x, p, scale=ctx['scale'], quantize=ctx['quantize'], **fixed, **ctx['options'])
  return apply


def _parameterless(fn):
  def apply(x, p, ctx):
    del p
    return fn(x, scale=ctx['scale'], quantize=ctx['quantize'], **ctx['options'])
  return apply


def _geometric(fn):
  def apply(x, p, ctx):
    return fn(x, p, fill=ctx['fill'])
  return apply


OPS: dict[str, Op] = {
    'brightness': Op('pointwise', _factor, _pointwise(pw.brightness), 0.9, _fixed_factor),
    'contrast': Op('pointwise', _factor, _pointwise(pw.contrast), 0.9, _fixed_factor),
    'sharpness': Op('pointwise', _factor, _pointwise(pw.sharpness), 0.9, _fixed_factor),
    'posterize': Op('pointwise', _posterize_bits, _pointwise(pw.posterize), 4, _fixed_bits),
    'solarize': Op('pointwise', _threshold, _pointwise(pw.solarize), 1.0, _fixed_threshold),
    'equalize': Op('pointwise', _none, _parameterless(pw.equalize), 0.0),
    'invert': Op('pointwise', _none, _parameterless(pw.invert), 0.0),
    'autocontrast': Op('pointwise', _none, _parameterless(pw.autocontrast), 0.0),
    'jpeg': Op('spatial', _quality, _pointwise(ops_other.jpeg), 0.75, _fixed_quality),
    'rotate': Op('spatial', _symmetric, _geometric(sp.rotate), 30.0, _fixed_symmetric),
    'shear_x': Op('spatial', _symmetric, _geometric(sp.shear_x), 0.3, _fixed_symmetric),
    'shear_y': Op('spatial', _symmetric, _geometric(sp.shear_y), 0.3, _fixed_symmetric),
    'translate_x': Op('spatial', _pixels, _geometric(sp.translate_x), 0.25, _fixed_pixels),
    'translate_y': Op('spatial', _pixels_y, _geometric(sp.translate_y), 0.25,
                      _fixed_pixels_y),
    'crop': Op('spatial', _crop_box, lambda x, p, ctx: sp.crop_resize(x, *p), 0.25),
    'resized_crop': Op('spatial', _resized_crop_box,
                       lambda x, p, ctx: sp.crop_resize(x, *p), 0.5),
    'inception_crop': Op('spatial', _inception_box,
                         lambda x, p, ctx: sp.crop_resize(x, *p), 0.75),
    'cutout': Op('spatial', _cutout_params,
                 lambda x, p, ctx: sp.cutout(x, p[0], p[1], p[2], fill=ctx['fill']), 0.36),
    'patch_dropout': Op('tokens', _none, None, 0.5),
}

STAGE_DEFAULTS = {'op': '', 'variant': 'c2', 'magnitude': None, 'prob': 1.0, 'options': {}}


@dataclasses.dataclass(frozen=True)
class Stage:
  op: str
  variant: str = 'c2'
  magnitude: float | None = None
  prob: float = 1.0
  options: tuple[tuple[str, Any], ...] = ()

  @property
  def m(self) -> float:
    return OPS[self.op].default_magnitude if self.magnitude is None else float(self.magnitude)


def make_stage(cfg) -> Stage:
  """A Stage from a dict {'op', 'variant', 'magnitude', 'prob', 'options'}."""
  cfg = dict(cfg.items()) if hasattr(cfg, 'items') else {'op': cfg}
  unknown = sorted(set(cfg) - set(STAGE_DEFAULTS))
  if unknown:
    raise ValueError(f'unknown key(s) {unknown} in FroFA stage {cfg}; '
                     f'valid: {sorted(STAGE_DEFAULTS)}')
  cfg = {**STAGE_DEFAULTS, **cfg}
  if cfg['op'] not in OPS:
    raise ValueError(f"unknown FroFA op {cfg['op']!r}; valid: {sorted(OPS)}")
  if cfg['variant'] not in mapping.VARIANTS:
    raise ValueError(f"unknown FroFA variant {cfg['variant']!r}; valid: {mapping.VARIANTS}")
  if cfg['variant'] in ('e', 'e2') and OPS[cfg['op']].kind != 'pointwise':
    raise ValueError(f"element-wise FroFA (variant {cfg['variant']!r}) needs a pointwise op; "
                     f"{cfg['op']!r} moves or mixes values")
  if not 0.0 <= float(cfg['prob']) <= 1.0:
    raise ValueError(f"FroFA stage prob must be in [0, 1], got {cfg['prob']}")
  options = cfg['options'] or {}
  options = dict(options.items()) if hasattr(options, 'items') else dict(options)
  return Stage(cfg['op'], cfg['variant'], cfg['magnitude'], float(cfg['prob']),
               tuple(sorted(options.items())))


def apply_stage(stage: Stage, key, f, *, scale: float = 1.0, quantize: bool = False,
                fill: float = 0.5, magnitude_scale=1.0, sampling: str = 'uniform'):
  """One FroFA on one feature map f (H, W, C).

  `magnitude_scale` (TrivialAugment's u, may be traced) multiplies the magnitude.
  `fill` is the fill value of geometric ops as a fraction of the image range.
  `sampling`: 'uniform' ranges or big_vision's 'fixed' level values (module doc).
  """
  op = OPS[stage.op]
  h, w, c = f.shape
  k_param, k_coin = jax.random.split(key)
  if op.kind == 'tokens':
    return sp.patch_dropout(f, k_param, keep=max(1, round((1.0 - stage.m) * h * w)))
  m = stage.m * magnitude_scale
  ctx = {'scale': scale, 'quantize': quantize, 'fill': fill * scale,
         'options': dict(stage.options)}
  stats = mapping.feature_stats(f, stage.variant)
  x = mapping.f_to_x(f, stats, scale)
  sampler = op.fixed if sampling == 'fixed' and op.fixed is not None else op.sample
  draw = lambda k: sampler(k, m, h, w)
  if stage.variant == 'default':
    p = draw(k_param)
    y = op.apply(x, p, ctx)
    coin = jax.random.bernoulli(k_coin, stage.prob)
  elif stage.variant in ('e', 'e2'):   # element-wise: pointwise ops only (make_stage)
    p = jax.vmap(draw)(jax.random.split(k_param, h * w * c)).reshape(h, w, c)
    y = op.apply(x, p, ctx)
    coin = jax.random.bernoulli(k_coin, stage.prob, (h, w, c))
  else:
    p = jax.vmap(draw)(jax.random.split(k_param, c))
    if op.kind == 'pointwise':
      y = op.apply(x, p, ctx)
    else:
      per_channel = lambda xc, pc: op.apply(xc[..., None], pc, ctx)[..., 0]
      y = jax.vmap(per_channel, in_axes=(-1, 0), out_axes=-1)(x, p)
    coin = jax.random.bernoulli(k_coin, stage.prob, (c,))
  y = jnp.where(coin, y, x)
  return mapping.x_to_f(y, stats, scale).astype(f.dtype)


@dataclasses.dataclass(frozen=True)
class Policy:
  kind: str = 'none'
  stages: tuple[Stage, ...] = ()
  num_ops: int = 2
  scale: float = 1.0
  quantize: bool = False
  fill: float = 0.5
  mixup_alpha: float = 0.0
  mixup_per_example: bool = False
  magnitude_sampling: str = 'uniform'


POLICY_DEFAULTS = {'policy': 'none', 'stages': [], 'num_ops': 2, 'scale': 1.0,
                   'quantize': False, 'fill': 0.5, 'mixup_alpha': 0.0,
                   'mixup_per_example': False, 'magnitude_sampling': 'uniform'}
SAMPLINGS = ('uniform', 'fixed')


def make_policy(cfg) -> Policy:
  """A Policy from a dict with the keys of POLICY_DEFAULTS (see the module docstring)."""
  cfg = dict(cfg.items()) if cfg else {}
  unknown = sorted(set(cfg) - set(POLICY_DEFAULTS))
  if unknown:
    raise ValueError(f'unknown FroFA augment key(s) {unknown}; valid: {sorted(POLICY_DEFAULTS)}')
  cfg = {**POLICY_DEFAULTS, **cfg}
  if cfg['policy'] not in POLICIES:
    raise ValueError(f"unknown FroFA policy {cfg['policy']!r}; valid: {POLICIES}")
  if float(cfg['scale']) not in (1.0, 255.0):
    raise ValueError(f"FroFA image range scale must be 1 or 255, got {cfg['scale']}")
  stages = tuple(make_stage(s) for s in cfg['stages'])
  kind = cfg['policy']
  if kind != 'none' and not stages:
    raise ValueError(f'FroFA policy {kind!r} needs at least one stage')
  tokens = [i for i, s in enumerate(stages) if OPS[s.op].kind == 'tokens']
  if tokens and (kind != 'sequence' or tokens != [len(stages) - 1]):
    raise ValueError('patch_dropout changes the number of tokens: it may only be the '
                     "last stage of a 'sequence' policy")
  if kind == 'randaugment' and int(cfg['num_ops']) < 1:
    raise ValueError(f"randaugment needs num_ops >= 1, got {cfg['num_ops']}")
  if cfg['magnitude_sampling'] not in SAMPLINGS:
    raise ValueError(f"unknown FroFA magnitude_sampling {cfg['magnitude_sampling']!r}; "
                     f'valid: {SAMPLINGS}')
  if float(cfg['mixup_alpha']) < 0:
    raise ValueError(f"mixup_alpha must be >= 0, got {cfg['mixup_alpha']}")
  return Policy(kind, stages if kind != 'none' else (), int(cfg['num_ops']),
                float(cfg['scale']), bool(cfg['quantize']), float(cfg['fill']),
                float(cfg['mixup_alpha']), bool(cfg['mixup_per_example']),
                cfg['magnitude_sampling'])


def augment_example(policy: Policy, key, f):
  """The policy's stages on one feature map f (H, W, C) (no mixup)."""
  kw = dict(scale=policy.scale, quantize=policy.quantize, fill=policy.fill,
            sampling=policy.magnitude_sampling)
  if policy.kind == 'none':
    return f
  if policy.kind == 'sequence':
    for stage, k in zip(policy.stages, jax.random.split(key, len(policy.stages))):
      f = apply_stage(stage, k, f, **kw)
    return f
  branches_of = lambda u: [functools.partial(apply_stage, s, magnitude_scale=u, **kw)
                           for s in policy.stages]
  if policy.kind == 'randaugment':
    for k in jax.random.split(key, policy.num_ops):
      k_choice, k_op = jax.random.split(k)
      i = jax.random.randint(k_choice, (), 0, len(policy.stages))
      f = jax.lax.switch(i, branches_of(1.0), k_op, f)
    return f
  k_choice, k_u, k_op = jax.random.split(key, 3)   # trivialaugment
  i = jax.random.randint(k_choice, (), 0, len(policy.stages))
  u = jax.random.uniform(k_u, ())
  return jax.lax.switch(i, branches_of(u), k_op, f)


def augment_batch(policy: Policy, key, features, labels_onehot=None):
  """Per-example FroFA on a batch (B, H, W, C), then mixup if configured.

  Returns (features', labels').  Each example draws from its own key.
  """
  if features.ndim != 4:
    raise ValueError(f'expected a batch of feature maps (B, H, W, C), got {features.shape}')
  k_ex, k_mix = jax.random.split(key)
  keys = jax.random.split(k_ex, features.shape[0])
  out = jax.vmap(functools.partial(augment_example, policy))(keys, features)
  if policy.mixup_alpha > 0:
    if labels_onehot is None:
      raise ValueError('mixup needs the (one-hot) labels')
    out, labels_onehot = ops_other.mixup(k_mix, out, labels_onehot, policy.mixup_alpha,
                                         per_example=policy.mixup_per_example)
  return out, labels_onehot
