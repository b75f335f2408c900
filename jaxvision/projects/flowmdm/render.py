r"""Render motions as animated GIFs of a matplotlib stick figure.

  python -m jaxvision.projects.flowmdm.render --workdir=workdirs/flowmdm_tiny --index=0 \
      [--out=composition.gif] [--fps=20]

reads `<workdir>/compose_compositions.npz` (written by the composition evaluator),
decodes composition `index` to joints and writes a GIF whose title names the segment
being performed.  `render_gif(joints, chains, path)` renders any (T, J, 3) motion.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

import numpy as np

from jaxvision.data import deepmimic
from jaxvision.data import motion_representation as mr

# HumanML3D's 22-joint SMPL chains (t2m_kinematic_chain) and the DeepMimic humanoid's.
T2M_CHAINS = ((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21),
              (9, 13, 16, 18, 20))
CHAINS = {22: T2M_CHAINS, 18: deepmimic.CHAINS}
COLORS = ('tab:red', 'tab:blue', 'black', 'tab:red', 'tab:blue', 'tab:green')


def render_gif(joints, chains, path: str, *, fps: float = 20.0,
               titles: Sequence[str] | None = None, dpi: int = 80) -> str:
  """Writes joints (T, J, 3) (y up) as a GIF; `titles` per frame (optional)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from matplotlib import animation  # pylint: disable=g-import-not-at-top
  joints = np.asarray(joints, np.float64)
  if joints.ndim != 3 or joints.shape[-1] != 3:
    raise ValueError(f'joints must be (frames, joints, 3), got {joints.shape}')
  if not np.all(np.isfinite(joints)):
    raise ValueError('joints contain NaN or inf')
  fig = plt.figure(figsize=(4, 4))
  fig.subplots_adjust(left=0, right=1, bottom=0, top=0.95)
  ax = fig.add_subplot(111, projection='3d')
  lo, hi = joints.min(axis=(0, 1)), joints.max(axis=(0, 1))
  radius = 0.5 * max(hi[0] - lo[0], hi[2] - lo[2], 1.0) + 0.2
  top = max(hi[1], 1.0) * 1.05
  mid = 0.5 * (lo + hi)

  def draw(t):
    ax.clear()
    ax.set_xlim(mid[0] - radius, mid[0] + radius)
    ax.set_ylim(mid[2] - radius, mid[2] + radius)
    ax.set_zlim(0, top)
    ax.set_axis_off()
    ax.set_box_aspect((2 * radius, 2 * radius, top), zoom=1.3)
    ax.view_init(elev=15, azim=-70)
    x, y, z = joints[t, :, 0], joints[t, :, 2], joints[t, :, 1]   # plot y-up as z-up
    for i, chain in enumerate(chains):
      ax.plot(x[list(chain)], y[list(chain)], z[list(chain)], color=COLORS[i % len(COLORS)],
              linewidth=2)
    ax.plot(joints[:t + 1, 0, 0], joints[:t + 1, 0, 2], np.zeros(t + 1), color='gray',
            linewidth=1)
    ax.set_title(titles[t] if titles else f'frame {t}', fontsize=8)

  anim = animation.FuncAnimation(fig, draw, frames=len(joints), interval=1000 / fps)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  anim.save(path, writer=animation.PillowWriter(fps=fps), dpi=dpi)
  plt.close(fig)
  return path


def segment_titles(texts: Sequence[str], lengths: Sequence[int]) -> list[str]:
  out = []
  for text, n in zip(texts, lengths):
    out += [text] * int(n)
  return out


def render_composition(npz_path: str, index: int, out: str, fps: float = 20.0) -> str:
  data = np.load(npz_path)
  feats, lengths = data['features'][index], data['lengths'][index]
  lengths = [int(n) for n in lengths if n > 0]
  texts = str(data['texts'][index]).split(' | ')
  joints = mr.recover_from_ric(feats[:sum(lengths)].astype(np.float64),
                               mr.num_joints_from_dim(feats.shape[-1]))
  chains = CHAINS.get(joints.shape[1])
  if chains is None:
    raise ValueError(f'no skeleton drawing for {joints.shape[1]} joints')
  return render_gif(joints, chains, out, fps=fps, titles=segment_titles(texts, lengths))


def main(argv=None) -> int:
  import argparse  # pylint: disable=g-import-not-at-top
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--workdir', required=True)
  p.add_argument('--index', type=int, default=0)
  p.add_argument('--evaluator', default='compose')
  p.add_argument('--out', default='')
  p.add_argument('--fps', type=float, default=20.0)
  a = p.parse_args(argv)
  npz = os.path.join(a.workdir, f'{a.evaluator}_compositions.npz')
  if not os.path.exists(npz):
    raise FileNotFoundError(f'{npz} not found: run the experiment (its composition evaluator '
                            'writes it) first')
  out = a.out or os.path.join(a.workdir, f'composition_{a.index}.gif')
  print(render_composition(npz, a.index, out, a.fps))
  return 0


if __name__ == '__main__':
  sys.exit(main())
