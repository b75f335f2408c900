r"""FroFA paper settings: a MAP head on frozen big_vision ViT-B/16 or L/16 features (Sec. 4).

  python -m jaxvision.projects.frofa.study \
      --config=experiments/frofa/transfer_vit.py:variant=L/16,dataset=imagenet2012 \
      --config.input.backbone.npz=/ckpts/L_16.npz --config.input.data_dir=/data/tfds \
      --sweep=paper --shots=1,5,10,25 --seeds=5 --out=results/frofa_i1k_l16.json

or one run through the binary (`python -m jaxvision.train --config=...:shots=1,frofa=bc2_pc`).
Datasets (tfds, prepared under `data_dir`; nothing is downloaded): ILSVRC-2012 and the
paper's transfer sets below, each with a held-out val split for the sweep.  Features are
the patch tokens after the encoder's final LayerNorm at 224 px (a 14x14x1024 grid for
L/16; the benchmark's 16x16 grid is 256 px), cached once (float16) for a class-balanced
train pool of 50 images per class (enough for 25 shots; k-shot draws come from it).
Hyper-parameters follow the paper's sweep (batch {32..512}, lr {0.01..0.1}, steps
{1k..16k}, wd {1e-2..0}); its optimizer is not published: SGD with momentum 0.9 and a
cosine schedule here (a documented choice).  MAP head sizes are the backbone's
(L/16: 16 heads, MLP 4096; B/16: 12 heads, MLP 3072).
`:tiny` is a shape test with a random Ti-sized ViT on tfds mock data.
"""

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
from jaxvision.nn import vit
from jaxvision.projects.frofa import presets
import ml_collections

# name: (num_classes, train, val, test)
DATASETS = {
    'imagenet2012': (1000, 'train[:99%]', 'train[99%:]', 'validation'),
    'cifar10': (10, 'train[:98%]', 'train[98%:]', 'test'),
    'cifar100': (100, 'train[:98%]', 'train[98%:]', 'test'),
    'dtd': (47, 'train', 'validation', 'test'),
    'sun397': (397, 'train', 'validation', 'test'),
    'resisc45': (45, 'train[:60%]', 'train[60%:80%]', 'train[80%:]'),
    'svhn_cropped': (10, 'train[:98%]', 'train[98%:]', 'test'),
    'dmlab': (6, 'train', 'validation', 'test'),
}


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, variant='L/16', dataset='imagenet2012', shots=1, seed=0,
                  frofa='brightness_c2', steps=4000, lr=0.03, wd=1e-4, batch_size=512)
  num_classes, train_split, val_split, test_split = DATASETS[arg.dataset]
  width, _, mlp_dim, heads = vit.VARIANTS[arg.variant.split('/')[0]]
  del width
  c = ml_collections.ConfigDict()
  c.project = 'frofa'
  c.seed = arg.seed
  c.total_steps = arg.steps
  c.log_every = 100
  c.input = dict(dataset=arg.dataset, data_dir='', num_classes=num_classes,
                 train_split=train_split, val_split=val_split, test_split=test_split,
                 train_pool_per_class=50, max_eval_examples=50_000, cache_dtype='float16',
                 shots=arg.shots, fewshot_seed=arg.seed, batch_size=arg.batch_size,
                 backbone=dict(kind='vit_npz', npz='', variant=arg.variant,
                               image_size=(224, 224), batch_size=256))
  c.model = dict(num_classes=num_classes, num_heads=heads, mlp_dim=mlp_dim, pool='map')
  c.augment = presets.get(arg.frofa)
  c.optimizer = dict(name='sgd', momentum=0.9, weight_decay=arg.wd, grad_clip_norm=1.0)
  c.schedule = dict(type='cosine', base_lr=arg.lr, warmup_steps=0.05)
  c.evals = dict(val=dict(type='classification', split='val', every=1000, batch_size=1024),
                 test=dict(type='classification', split='test', every=0, batch_size=1024),
                 linear_probe=dict(type='linear_probe', train_split='fewshot', split='test',
                                   l2_regs=(2.0 ** 10, 2.0 ** 5, 1.0)))
  c.checkpoint = dict(every=1000, keep=1)

  if arg.tiny:  # shape test on tfds mock data (tests/test_experiments.py)
    c.total_steps = 2
    c.log_every = 1
    c.input.update(shots=0, batch_size=8, train_pool_per_class=0, max_eval_examples=16,
                   val_split='validation' if arg.dataset == 'imagenet2012' else val_split,
                   cache_dtype='float32')
    c.input.backbone = dict(kind='vit_random', variant='Ti/16', image_size=(32, 32),
                            batch_size=8)
    c.model.update(num_heads=3, mlp_dim=64)
    c.evals = dict(val=dict(type='classification', split='val', batch_size=8))
    c.schedule.warmup_steps = 1
    c.checkpoint.every = 1
  return with_defaults(c)
