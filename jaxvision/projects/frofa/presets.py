"""Named FroFA policies of the paper's study (Sec. 4), for configs and the few-shot study.

'brightness_c2' (c²FroFA brightness) is the paper's default after its pilot study;
'bc2_pc' (brightness c² then posterize c) its best 1-shot sequential setting.  Each value
is a `config.augment` dict (see `augment.py`).
"""

from __future__ import annotations

from jaxvision.projects.frofa import augment

_STYLISTIC = ('brightness', 'contrast', 'equalize', 'invert', 'posterize', 'sharpness',
              'solarize')
_GEOMETRIC = ('rotate', 'shear_x', 'shear_y', 'translate_x', 'translate_y')


def _single(op, variant, **kw):
  return {'policy': 'sequence', 'stages': [dict(op=op, variant=variant, **kw)]}


PRESETS = {
    'none': {'policy': 'none'},
    'brightness': _single('brightness', 'default'),
    'brightness_c': _single('brightness', 'c'),
    'brightness_c2': _single('brightness', 'c2'),
    'brightness_e': _single('brightness', 'e'),      # element-wise (the paper: it hurts)
    'brightness_e2': _single('brightness', 'e2'),
    'contrast_c2': _single('contrast', 'c2'),
    'posterize_c': _single('posterize', 'c'),
    'bc2_pc': {'policy': 'sequence', 'stages': [dict(op='brightness', variant='c2'),
                                               dict(op='posterize', variant='c')]},
    'randaugment_stylistic': {'policy': 'randaugment', 'num_ops': 2,
                              'stages': [dict(op=o, variant='c2') for o in _STYLISTIC]},
    'trivialaugment_stylistic': {'policy': 'trivialaugment',
                                 'stages': [dict(op=o, variant='c2') for o in _STYLISTIC]},
    'geometric_default': {'policy': 'trivialaugment',
                          'stages': [dict(op=o, variant='default') for o in _GEOMETRIC]},
    'mixup': {'policy': 'none', 'mixup_alpha': 0.2},
}


def get(name: str, **overrides) -> dict:
  """The preset `name` as a fresh dict (validated), with top-level keys overridden."""
  if name not in PRESETS:
    raise ValueError(f'unknown FroFA preset {name!r}; valid: {sorted(PRESETS)}')
  out = {k: (list(v) if isinstance(v, list) else v) for k, v in PRESETS[name].items()}
  out.update(overrides)
  augment.make_policy(out)
  return out
