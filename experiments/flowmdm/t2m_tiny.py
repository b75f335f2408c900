r"""Guo et al.'s T2M evaluator trained on the embedded DeepMimic mocap (project flowmdm.t2m).

  python -m jaxvision.train --config=experiments/flowmdm/t2m_tiny.py --workdir=workdirs/t2m_tiny

The FlowMDM tiny experiment scores its compositions in this evaluator's space
(R-precision, matching score, FID, diversity) with
`--config.evals.compose.t2m_workdir=workdirs/t2m_tiny`.  Word vectors are MiniLM's
WordPiece embeddings (GloVe is not available offline).  A smaller evaluator than the
released one (hidden 128, embedding 128), as the dataset has 40 motions.  `:tiny` is
the 2-step smoke test.
"""

from jaxvision.config import parse_arg
from jaxvision.config import with_defaults
import ml_collections


def get_config(arg=None):
  arg = parse_arg(arg, tiny=False, steps=600)
  c = ml_collections.ConfigDict()
  c.project = 'flowmdm.t2m'
  c.seed = 0
  c.total_steps = arg.steps
  c.log_every = 100
  c.input = dict(dataset='deepmimic', batch_size=32, max_frames=96, min_length=10,
                 max_length=200, fps=20.0, word_vectors='minilm')
  c.model = dict(input_dim=215, movement_hidden=128, movement_latent=128, text_hidden=128,
                 motion_hidden=128, coemb_size=128)
  c.optimizer = dict(name='adam', grad_clip_norm=0.5)
  c.schedule = dict(type='constant', base_lr=1e-3)
  c.evals = dict(match=dict(type='matching', split='test', batch_size=32))
  c.checkpoint = dict(every=500, keep=1)
  if arg.tiny:
    c.total_steps = 2
    c.log_every = 1
    c.input.batch_size = 8
    c.model.update(movement_hidden=16, movement_latent=16, text_hidden=16, motion_hidden=16,
                   coemb_size=16)
    c.checkpoint.every = 1
  return with_defaults(c)
