r"""Default experiment: a small ViT on the real 8x8 handwritten digits (scikit-learn).

  python -m jaxvision.train --config=experiments/classification/digits_vit.py \
      --workdir=workdirs/digits_vit

Runs on 2 CPU cores in a few minutes.  `:tiny` is a 2-step smoke test.  The checkpoint
this writes is the frozen backbone FroFA's digits experiments start from;
`:classes=0-4` trains (and tests) on those digit classes only (FroFA's transfer backbone).
"""

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
from jaxvision.data import digits
import ml_collections


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, steps=1200, classes='')
  num_classes = len(digits.parse_classes(arg.classes)) or digits.NUM_CLASSES
  c = ml_collections.ConfigDict()
  c.project = 'classification'
  c.seed = 0
  c.total_steps = arg.steps
  c.log_every = 100

  c.input = dict(dataset='digits', train_split='train_full', classes=arg.classes,
                 batch_size=128, image_size=(8, 8), channels=1, value_range=(0.0, 1.0),
                 augment=dict(crop_pad=1))
  # 16 tokens of 2x2 pixels; a 4-layer, width-64 ViT (about 0.2M parameters).
  c.model = dict(variant='S/2', width=64, depth=4, mlp_dim=256, num_heads=4,
                 num_classes=num_classes, pool_type='gap', dropout=0.0)
  c.loss = dict(kind='softmax_xent', label_smoothing=0.1)
  c.optimizer = dict(name='adamw', weight_decay=0.05, grad_clip_norm=1.0)
  c.schedule = dict(type='cosine', base_lr=2e-3, warmup_steps=100, end_lr=0.0)
  c.evals = dict(test=dict(type='classification', split='test', every=400, batch_size=360))
  c.checkpoint = dict(every=400, keep=2)

  if arg.tiny:
    c.total_steps = 2
    c.log_every = 1
    c.input.batch_size = 8
    c.model.update(width=16, depth=1, mlp_dim=32, num_heads=2)
    c.evals.test.update(every=0, batch_size=64)
    c.schedule.warmup_steps = 1
    c.checkpoint.every = 1
  return with_defaults(c)
