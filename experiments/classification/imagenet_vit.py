r"""ViT on ImageNet-2012 through tfds ("Better plain ViT baselines", Beyer et al. 2022).

  python -m jaxvision.train --config=experiments/classification/imagenet_vit.py:variant=S/16 \
      --config.input.data_dir=/path/to/tensorflow_datasets --workdir=gs://.../vit_s16_i1k

Needs `imagenet2012` prepared under `input.data_dir` (nothing is downloaded).
The paper recipe: S/16, batch 1024, 90 epochs, AdamW(lr 1e-3, wd 1e-4), 10k warmup
steps then cosine, grad clip 1.0, sincos2d position embeddings, global average pooling,
inception crop + flip.  Deviation: the recipe also uses RandAugment(2, 10) and mixup
(p=0.2), which this project does not implement yet (see the project README).
"""

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
import ml_collections

IMAGENET_TRAIN_EXAMPLES = 1_281_167


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, variant='S/16', epochs=90, batch_size=1024)
  c = ml_collections.ConfigDict()
  c.project = 'classification'
  c.seed = 0
  c.total_steps = arg.epochs * IMAGENET_TRAIN_EXAMPLES // arg.batch_size
  c.log_every = 100
  c.mesh = dict(data=-1, fsdp=1, model=1)

  c.input = dict(dataset='imagenet2012', data_dir='', train_split='train[:99%]',
                 batch_size=arg.batch_size, image_size=(224, 224), channels=3,
                 value_range=(-1.0, 1.0), eval_central_crop=True, num_workers=8,
                 augment=dict(inception_crop=True, flip=True))
  c.model = dict(variant=arg.variant, num_classes=1000, pool_type='gap', posemb='sincos2d',
                 dtype_mm='bfloat16')
  c.loss = dict(kind='softmax_xent')
  c.optimizer = dict(name='adamw', weight_decay=1e-4, grad_clip_norm=1.0)
  c.schedule = dict(type='cosine', base_lr=1e-3, warmup_steps=10_000)
  c.evals = dict(
      minival=dict(type='classification', split='train[99%:]', every=2500, batch_size=1024),
      val=dict(type='classification', split='validation', every=2500, batch_size=1024))
  c.checkpoint = dict(every=1000, keep=3)

  if arg.tiny:  # shape smoke test (tests run it on tfds mock data)
    c.total_steps = 2
    c.log_every = 1
    c.input.update(batch_size=8, image_size=(32, 32), num_workers=0)
    c.model.update(variant='Ti/16', width=16, depth=1, mlp_dim=32, num_heads=2,
                   dtype_mm='float32')
    c.schedule.warmup_steps = 1
    c.evals = dict(val=dict(type='classification', split='validation', every=0, batch_size=8))
    c.checkpoint.every = 1
  return with_defaults(c)
