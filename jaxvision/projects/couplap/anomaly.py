"""Anomaly localisation with coupled eigenmaps (Bastico et al., CVPR 2024, Sec. 4.1).

The pipeline of upstream `benchmark_ad.py` + `model/ad.py` (facts, not code):

1. each organised scan → drop missing points → background-plane removal (|PC3| >
   `threshold`) → random subsample to `n_points` → largest kNN connected component;
2. the good reference ("source") is registered onto each test cloud ("target"): global
   rigid registration robust to any rotation (substitute for Open3D FPFH-RANSAC), then
   affine CPD on `cpd_down`-point subsamples (substitute for probreg), applied to all of it;
3. `int(cross · n_target)` target points are selected, each linked to its nearest
   registered source point; the methods score those points:
   - 'coupled': cosine distance between the coupled-eigenmap rows (`maps` maps);
   - 'euclidean': distance to the nearest cross source point / its max;
   - 'independent' ("GPS"): cosine distance of independently computed eigenmaps;
   - 'histogram' ("Hist"): the same after aligning the target's eigenmaps to the
     source's by histogram signatures (Bhattacharyya + Hungarian);
4. scores go back to their pixels and are grey-closed with `disk(int(sampling_factor))`.
   `pixel_mapping='exact'` (default) carries each point's pixel through the
   pre-processing.  `'upstream'` reproduces upstream's mapping: inverse PCA of the point
   as upstream stores it, then the nearest pixel of the whole organised scan (KD-tree,
   zero pixels included).  Upstream negates PC3 to turn a scan whose object lies on the
   negative side; its inverse PCA then returns the point MIRRORED through the table
   plane, so the scores of such scans land on the wrong (mirrored-neighbourhood) pixels.

Registration (`registration`): 'pca_icp' (default; 24 PCA hypotheses + trimmed ICP) or
'fpfh_ransac' (upstream: FPFH + RANSAC on `ransac_voxel` grids, `geometry.ransac`);
both followed by the affine CPD when `affine`.  Neighbour ties: `knn` ('sklearn' as
upstream, or 'ckdtree'); eigensolver: `solver` ('upstream' = 20-iteration AMG-LOBPCG).

Reproducibility: every random choice draws from a numpy Generator seeded from config;
`score_pair` also takes an explicit `cross_target` / `cross_source` selection.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from jaxvision.geometry import cpd
from jaxvision.geometry import ransac
from jaxvision.geometry import registration
from jaxvision.projects.couplap import coupled_laplacian as cl
from jaxvision.projects.couplap import matching_scores as ms
from jaxvision.projects.couplap import preprocess

METHODS = ('coupled', 'euclidean', 'independent', 'histogram')


@dataclasses.dataclass(frozen=True)
class ADSettings:
  n_points: int = 13000
  threshold: float = 0.001
  k: int = 10
  maps: int = 200
  cross: float = 0.5
  cross_mode: str = 'upstream'
  solver: str = 'auto'
  cpd_down: int = 3000
  cpd_iters: int = 50
  affine: bool = True        # affine CPD after the rigid registration
  bins: int = 200
  closing: bool = True
  knn: str = 'sklearn'            # kNN tie rule (graphs.KNN_BACKENDS)
  registration: str = 'pca_icp'  # or 'fpfh_ransac' (upstream)
  ransac_voxel: float = 0.001     # upstream AD voxel (metres)
  ransac_iters: int = 100000
  pixel_mapping: str = 'exact'    # or 'upstream' (mirrored after a plane-side flip)


REGISTRATIONS = ('pca_icp', 'fpfh_ransac')
PIXEL_MAPPINGS = ('exact', 'upstream')


def config_defaults() -> dict:
  """`config.anomaly` defaults: every ADSettings field plus the methods to run."""
  return {'methods': METHODS, **dataclasses.asdict(ADSettings())}


@dataclasses.dataclass
class Scan:
  points: np.ndarray          # (n, 3) object points (PCA frame of the scan)
  pixel: np.ndarray           # (n,) flat pixel index of each point
  shape: tuple                # (H, W)
  sampling_factor: float
  foreground: np.ndarray      # flat indices of every object pixel (before subsampling)
  mean: np.ndarray | None = None    # PCA centre and axes of the scan (upstream mapping)
  axes: np.ndarray | None = None
  flipped: bool = False
  xyz: np.ndarray | None = None     # (H*W, 3) the organised scan, zeros included

  def foreground_mask(self) -> np.ndarray:
    mask = np.zeros(int(np.prod(self.shape)), bool)
    mask[self.foreground] = True
    return mask.reshape(self.shape)


def load_scan(xyz: np.ndarray, settings: ADSettings, rng: np.random.Generator) -> Scan:
  """Organised (H, W, 3) cloud → pre-processed object points with their pixels."""
  xyz = np.asarray(xyz)
  if xyz.ndim != 3 or xyz.shape[-1] != 3:
    raise ValueError(f'expected an organised H×W×3 scan, got {xyz.shape}')
  fg = preprocess.remove_background_plane(xyz.reshape(-1, 3), settings.threshold)
  idx, factor = preprocess.subsample(len(fg.points), settings.n_points, rng)
  pts, pix = fg.points[idx], fg.index[idx]
  keep = preprocess.largest_component(pts, settings.k, settings.knn)
  flat = xyz.reshape(-1, 3) if settings.pixel_mapping == 'upstream' else None
  return Scan(pts[keep], pix[keep], tuple(xyz.shape[:2]), factor, fg.index, fg.mean, fg.axes,
              fg.flipped, flat)


def upstream_pixels(scan: Scan, index: np.ndarray) -> np.ndarray:
  """Upstream's pixel of each point `scan.points[index]` (module doc, step 4)."""
  if scan.xyz is None or scan.mean is None:
    raise ValueError("upstream pixel mapping needs the scan loaded with "
                     "pixel_mapping='upstream'")
  world = scan.points[index] @ scan.axes + scan.mean
  if scan.flipped:   # upstream's stored point is the PC3-negated one: a reflection
    normal = scan.axes[2]
    world = world - 2.0 * ((world - scan.mean) @ normal)[:, None] * normal[None, :]
  return cKDTree(np.asarray(scan.xyz, np.float64)).query(world)[1]


def register(source: np.ndarray, target: np.ndarray, settings: ADSettings,
             rng: np.random.Generator) -> np.ndarray:
  """The source moved onto the target: global rigid, ICP, then affine CPD."""
  if settings.registration not in REGISTRATIONS:
    raise ValueError(f'anomaly registration {settings.registration!r}; expected one of '
                     f'{REGISTRATIONS}')
  seed = int(rng.integers(2 ** 31))
  if settings.registration == 'fpfh_ransac':
    rigid = ransac.fpfh_ransac(source, target, ransac.RansacSettings(
        voxel_size=settings.ransac_voxel, max_iter=settings.ransac_iters), seed=seed)
  else:
    rigid = registration.global_registration(source, target, seed=seed)
  moved = rigid.apply(source)
  if settings.affine:
    m = min(settings.cpd_down, len(moved), len(target))
    s_ds = moved[rng.choice(len(moved), m, replace=False)]
    t_ds = target[rng.choice(len(target), m, replace=False)]
    moved = cpd.affine_cpd(s_ds, t_ds, max_iter=settings.cpd_iters).apply(moved)
  return moved


def score_pair(source: np.ndarray, target: np.ndarray, settings: ADSettings, *,
               methods=METHODS, rng: np.random.Generator | None = None,
               cross_target: np.ndarray | None = None,
               cross_source: np.ndarray | None = None, seed: int = 0):
  """Scores of the selected target points for each method (clouds already registered).

  Returns ({method: (m,) scores}, cross_target, cross_source).
  """
  unknown = set(methods) - set(METHODS)
  if unknown:
    raise ValueError(f'unknown anomaly method(s) {sorted(unknown)}; known: {METHODS}')
  rng = rng or np.random.default_rng(seed)
  if cross_target is None:
    cross_target = cl.select_cross_points(len(target), settings.cross, rng)
  cross_target = np.asarray(cross_target, np.int64)
  if cross_source is None:
    cross_source = cKDTree(source).query(target[cross_target])[1]
  cross_source = np.asarray(cross_source, np.int64)
  out = {}
  if 'coupled' in methods:
    res = cl.coupled_eigenmaps([source, target], hub=1, n_maps=settings.maps,
                               cross_target=cross_target, cross_source=[cross_source],
                               k=settings.k, cross_mode=settings.cross_mode,
                               solver=settings.solver, seed=seed, knn=settings.knn)
    out['coupled'] = ms.cosine_distance_rows(res.maps[0][cross_source], res.maps[1][cross_target])
  if 'euclidean' in methods:
    out['euclidean'] = ms.euclidean_nn_score(source, target, cross_source, cross_target)
  if 'independent' in methods or 'histogram' in methods:
    kw = dict(k=settings.k, solver=settings.solver, seed=seed, knn=settings.knn)
    src_maps = cl.independent_eigenmaps(source, settings.maps, **kw)
    tgt_maps = cl.independent_eigenmaps(target, settings.maps, **kw)
    if 'independent' in methods:
      out['independent'] = ms.cosine_distance_rows(src_maps[cross_source], tgt_maps[cross_target])
    if 'histogram' in methods:
      aligned = ms.align_by_histograms(src_maps, tgt_maps, settings.bins)
      out['histogram'] = ms.cosine_distance_rows(src_maps[cross_source], aligned[cross_target])
  return out, cross_target, cross_source


def disk(radius: int) -> np.ndarray:
  r = int(radius)
  y, x = np.mgrid[-r:r + 1, -r:r + 1]
  return (x ** 2 + y ** 2) <= r ** 2


def scores_to_image(scores: np.ndarray, pixels: np.ndarray, shape, sampling_factor: float,
                    closing: bool = True) -> np.ndarray:
  """Scores on their pixels (0 elsewhere), grey-closed by disk(int(sampling_factor))."""
  img = np.zeros(int(np.prod(shape)))
  img[np.asarray(pixels)] = scores
  img = img.reshape(shape)
  if closing and sampling_factor > 1 and int(sampling_factor) >= 1:
    img = ndimage.grey_closing(img, footprint=disk(int(sampling_factor)))
  return img


def localize(reference: Scan, test: Scan, settings: ADSettings, *, methods=METHODS,
             seed: int = 0):
  """Registers the reference onto the test scan; per method, a score image.

  Returns ({method: (H, W) image}, {method: (m,) scores}, pixels of the scored points).
  """
  if settings.pixel_mapping not in PIXEL_MAPPINGS:
    raise ValueError(f'pixel_mapping {settings.pixel_mapping!r}; expected one of {PIXEL_MAPPINGS}')
  rng = np.random.default_rng(seed)
  source = register(reference.points, test.points, settings, rng)
  scores, cross_target, _ = score_pair(source, test.points, settings, methods=methods,
                                       rng=rng, seed=seed)
  if settings.pixel_mapping == 'upstream':
    pixels = upstream_pixels(test, cross_target)
  else:
    pixels = test.pixel[cross_target]
  images = {m: scores_to_image(s, pixels, test.shape, test.sampling_factor, settings.closing)
            for m, s in scores.items()}
  return images, scores, pixels
