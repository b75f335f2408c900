"""The embedded text-to-motion dataset: DeepMimic clips in the HumanML3D layout.

Each of the 20 real mocap clips of the pybullet wheel (`deepmimic.py`) is resampled to
20 fps, turned into HumanML3D features for its 18-joint skeleton
(`motion_representation.py`) and written with three hand-written paraphrases under
`<cache>/deepmimic_humanml3d/` in the HumanML3D layout, then read back by
`humanml3d.read_examples` exactly like the real dataset.  As HumanML3D does, every
motion also gets a left-right mirrored copy (id prefix `M`), whose texts swap 'left'
and 'right'.  Tokens are written as HumanML3D's 'lemma/POS' from a small lexicon that
covers the captions (an unknown word is an error, not a silent guess).

The dataset is tiny (40 motions, about 1,800 frames), so `val` and `test` list the
same ids as `train`: evaluation on it measures how well a model fits and composes real
motion, not generalisation to unseen motions.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from jaxvision.data import deepmimic
from jaxvision.data import humanml3d
from jaxvision.data import motion_representation as mr

FPS = 20.0
FEET_THRESHOLD = 0.002
LAYOUT_VERSION = 1

CAPTIONS = {
    'backflip': ('a person does a backflip', 'someone jumps and flips backwards',
                 'a person performs a back flip and lands on their feet'),
    'cartwheel': ('a person does a cartwheel', 'someone turns a cartwheel to the side',
                  'a person performs a cartwheel on their hands'),
    'crawl': ('a person crawls forward on hands and knees', 'someone crawls on the floor',
              'a person crawls slowly forward'),
    'dance_a': ('a person dances', 'someone dances in place moving their arms',
                'a person performs a dance move'),
    'dance_b': ('a person dances energetically', 'someone dances swinging their arms',
                'a person does a lively dance'),
    'getup_facedown': ('a person lying face down gets up',
                       'someone pushes up from the floor and stands up',
                       'a person gets up from lying on their stomach'),
    'getup_faceup': ('a person lying on their back gets up',
                     'someone sits up and stands up from the ground',
                     'a person gets up from lying on their back'),
    'jump': ('a person jumps forward', 'someone jumps with both feet', 'a person leaps forward'),
    'kick': ('a person kicks', 'someone kicks with one leg', 'a person kicks forward'),
    'punch': ('a person punches', 'someone throws a punch',
              'a person punches forward with one arm'),
    'roll': ('a person rolls forward on the ground', 'someone does a forward roll',
             'a person tumbles forward'),
    'run': ('a person runs forward', 'someone runs quickly', 'a person jogs forward'),
    'spin': ('a person spins around', 'someone turns around in place',
             'a person spins in a circle'),
    'spinkick': ('a person does a spinning kick', 'someone spins and kicks',
                 'a person performs a spin kick'),
    'walk': ('a person walks forward', 'someone walks straight ahead',
             'a person walks slowly forward'),
    'walker_walk_forward': ('a person walks forward', 'someone walks ahead',
                            'a person takes a few steps forward'),
    'walker_turn_left0': ('a person walks and turns left', 'someone turns to the left while walking',
                          'a person walks turning left'),
    'walker_turn_left1': ('a person turns left while walking', 'someone walks and turns to the left',
                          'a person makes a left turn'),
    'walker_turn_right0': ('a person walks and turns right',
                           'someone turns to the right while walking', 'a person walks turning right'),
    'walker_turn_right1': ('a person turns right while walking',
                           'someone walks and turns to the right', 'a person makes a right turn'),
}

# word -> (lemma, universal POS), as spaCy tags HumanML3D's captions.
LEXICON = {
    'a': ('a', 'DET'), 'the': ('the', 'DET'), 'their': ('their', 'PRON'),
    'person': ('person', 'NOUN'), 'someone': ('someone', 'PRON'),
    'and': ('and', 'CCONJ'), 'while': ('while', 'SCONJ'),
    'on': ('on', 'ADP'), 'in': ('in', 'ADP'), 'to': ('to', 'ADP'), 'from': ('from', 'ADP'),
    'with': ('with', 'ADP'), 'up': ('up', 'ADP'),
    'does': ('do', 'VERB'), 'performs': ('perform', 'VERB'), 'jumps': ('jump', 'VERB'),
    'flips': ('flip', 'VERB'), 'lands': ('land', 'VERB'), 'turns': ('turn', 'VERB'),
    'crawls': ('crawl', 'VERB'), 'dances': ('dance', 'VERB'), 'moving': ('move', 'VERB'),
    'swinging': ('swing', 'VERB'), 'lying': ('lie', 'VERB'), 'gets': ('get', 'VERB'),
    'pushes': ('push', 'VERB'), 'stands': ('stand', 'VERB'), 'sits': ('sit', 'VERB'),
    'leaps': ('leap', 'VERB'), 'kicks': ('kick', 'VERB'), 'punches': ('punch', 'VERB'),
    'throws': ('throw', 'VERB'), 'rolls': ('roll', 'VERB'), 'tumbles': ('tumble', 'VERB'),
    'runs': ('run', 'VERB'), 'jogs': ('jog', 'VERB'), 'spins': ('spin', 'VERB'),
    'walks': ('walk', 'VERB'), 'walking': ('walk', 'VERB'), 'takes': ('take', 'VERB'),
    'makes': ('make', 'VERB'), 'turning': ('turn', 'VERB'), 'spinning': ('spin', 'VERB'),
    'backflip': ('backflip', 'NOUN'), 'flip': ('flip', 'NOUN'), 'cartwheel': ('cartwheel', 'NOUN'),
    'side': ('side', 'NOUN'), 'hands': ('hand', 'NOUN'), 'knees': ('knee', 'NOUN'),
    'floor': ('floor', 'NOUN'), 'place': ('place', 'NOUN'), 'arms': ('arm', 'NOUN'),
    'arm': ('arm', 'NOUN'), 'dance': ('dance', 'NOUN'), 'move': ('move', 'NOUN'),
    'face': ('face', 'NOUN'), 'stomach': ('stomach', 'NOUN'), 'back': ('back', 'NOUN'),
    'ground': ('ground', 'NOUN'), 'feet': ('foot', 'NOUN'), 'leg': ('leg', 'NOUN'),
    'punch': ('punch', 'NOUN'), 'roll': ('roll', 'NOUN'), 'circle': ('circle', 'NOUN'),
    'kick': ('kick', 'NOUN'), 'steps': ('step', 'NOUN'), 'turn': ('turn', 'NOUN'),
    'spin': ('spin', 'NOUN'), 'left': ('left', 'NOUN'), 'right': ('right', 'NOUN'),
    'backwards': ('backwards', 'ADV'), 'forward': ('forward', 'ADV'), 'down': ('down', 'ADV'),
    'slowly': ('slowly', 'ADV'), 'energetically': ('energetically', 'ADV'),
    'around': ('around', 'ADV'), 'quickly': ('quickly', 'ADV'), 'straight': ('straight', 'ADV'),
    'ahead': ('ahead', 'ADV'),
    'lively': ('lively', 'ADJ'), 'both': ('both', 'DET'), 'one': ('one', 'NUM'),
    'few': ('few', 'ADJ'),
}


def tokenize(caption: str) -> tuple[str, ...]:
  """'a person walks' -> ('a/DET', 'person/NOUN', 'walk/VERB') via `LEXICON`."""
  out = []
  for word in caption.lower().replace(',', ' ').replace('.', ' ').split():
    if word not in LEXICON:
      raise KeyError(f'word {word!r} of caption {caption!r} is not in the lexicon')
    lemma, pos = LEXICON[word]
    out.append(f'{lemma}/{pos}')
  return tuple(out)


def swap_left_right(caption: str) -> str:
  words = caption.split()
  swap = {'left': 'right', 'right': 'left'}
  return ' '.join(swap.get(w, w) for w in words)


def build_motions():
  """{id: features}, {id: positions}, {id: [TextLine]} for originals and mirrors."""
  tree = deepmimic.skeleton()
  clips = sorted(deepmimic.clip_files())
  missing = sorted(set(clips) - set(CAPTIONS))
  if missing:
    raise KeyError(f'DeepMimic clips without captions: {missing}')
  motions, joints, texts = {}, {}, {}
  for i, clip in enumerate(clips):
    positions = deepmimic.clip_positions(clip, FPS)
    for prefix, pos, caps in (('', positions, CAPTIONS[clip]),
                              ('M', deepmimic.mirror(positions),
                               tuple(swap_left_right(c) for c in CAPTIONS[clip]))):
      name = f'{prefix}{i:06d}'
      feats, glob = mr.extract_features(pos, tree, feet_threshold=FEET_THRESHOLD)
      motions[name] = feats.astype(np.float32)
      joints[name] = mr.recover_from_ric(feats, tree.num_joints).astype(np.float32)
      texts[name] = [humanml3d.TextLine(c, tokenize(c)) for c in caps]
      del glob
  return motions, joints, texts


def clip_names() -> dict[str, str]:
  """Dataset id -> clip name (originals; mirrors are 'M' + id)."""
  return {f'{i:06d}': clip for i, clip in enumerate(sorted(deepmimic.clip_files()))}


def _fingerprint() -> str:
  payload = json.dumps({'v': LAYOUT_VERSION, 'captions': CAPTIONS, 'fps': FPS,
                        'feet': FEET_THRESHOLD}, sort_keys=True)
  return hashlib.sha256(payload.encode()).hexdigest()[:16]


def default_cache_dir() -> str:
  return os.environ.get('JAXVISION_CACHE', os.path.join(os.path.expanduser('~'), '.cache',
                                                         'jaxvision'))


def ensure_layout(cache_dir: str | None = None) -> str:
  """Writes the dataset under `<cache>/deepmimic_humanml3d` once; returns that folder."""
  root = os.path.join(cache_dir or default_cache_dir(), 'deepmimic_humanml3d')
  stamp = os.path.join(root, 'VERSION')
  if os.path.exists(stamp):
    with open(stamp) as f:
      if f.read().strip() == _fingerprint():
        return root
  motions, joints, texts = build_motions()
  names = sorted(motions)
  mean, std = humanml3d.normalization_stats([motions[n] for n in names],
                                            deepmimic.skeleton().num_joints)
  splits = {s: names for s in ('train', 'val', 'test', 'train_val', 'all')}
  humanml3d.write_layout(root, motions, texts, splits, mean=mean, std=std, joints=joints)
  with open(stamp + '.tmp', 'w') as f:
    f.write(_fingerprint())
  os.replace(stamp + '.tmp', stamp)
  return root
