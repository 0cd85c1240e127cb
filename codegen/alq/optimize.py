"""The Optimization Step: binary bases (thesis Algorithm 2.4, Eq. 2.21/2.22/2.26) and coordinates
(Algorithm 2.3, Eq. 2.23), both from AMSGrad's quadratic model of the loss.

Bases: with g = a m and H = sqrt(v_hat) of the gradient in the weight domain, each weight's
row of B is the sign pattern b whose b^T alpha (all 2^I_max values, Eq. 2.22) is nearest
``w_j - g_j / H_jj`` (Eq. 2.21); then alpha is the model's minimizer in the new span
(Eq. 2.26). Coordinates: plain AMSGrad steps on dl/dalpha = B^T dl/dw with an L2 pull
toward 0. Either way a negative coordinate flips its basis (canonical form).
"""
from __future__ import annotations

import numpy as np

from .amsgrad import AmsGrad
from .state import QLayer

LAMBDA = 1e-6  # Eq. 2.26's ridge: the system stays invertible when H vanishes on a group
L2 = 1e-4  # Algorithm 2.3's L2 on alpha


def sign_table(i_max: int) -> np.ndarray:
    """[2^I_max, I_max]: code c's signs, bit i set = -1 (so unused slots, alpha 0, pick +1 first)."""
    return 1.0 - 2.0 * ((np.arange(1 << i_max)[:, None] >> np.arange(i_max)) & 1)


def search_bases(q: QLayer, target: np.ndarray) -> np.ndarray:
    """Eq. 2.21: every weight's sign pattern [O, G, I_max, n] whose b^T alpha is nearest ``target`` [O, G, n]."""
    signs = sign_table(q.i_max)
    values = np.einsum("ci,ogi->ogc", signs, q.alpha * q.live)  # Eq. 2.22
    best = np.abs(values[:, :, None, :] - target[..., None]).argmin(axis=-1)  # [O, G, n]
    return np.moveaxis(signs[best], -1, 2)


def refit_alpha(q: QLayer, bases: np.ndarray, h: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Eq. 2.26 on each group's live slots: alpha = (B'^T H B' + lambda I)^-1 B'^T (H w - g), written
    with ``target`` = w - g / H as (B'^T H B' + lambda I)^-1 B'^T H target."""
    live = q.live
    b = bases * live[..., None] * q.groups.mask[:, None, :]
    gram = np.einsum("ogin,ogn,ogjn->ogij", b, h, b) + LAMBDA * np.eye(q.i_max)
    gram += np.eye(q.i_max) * ~live[..., None]  # unused slots: 1 on the diagonal, 0 on the right
    rhs = np.einsum("ogin,ogn->ogi", b, h * target)
    return np.linalg.solve(gram, rhs[..., None])[..., 0] * live


def project(q: QLayer, target: np.ndarray, h: np.ndarray) -> None:
    """The quadratic model's best point near ``target`` [O, G, n] with q's counts: bases by Eq. 2.21,
    then coordinates by Eq. 2.26."""
    bases = search_bases(q, target)
    q.alpha = refit_alpha(q, bases, h, target)
    q.bases = bases
    q.canonical()


def bases_step(q: QLayer, opt: AmsGrad, grad_w: np.ndarray, lr: float) -> None:
    """One iteration of Algorithm 2.4 on one layer (opt: its weight-domain moments, [O, G, n])."""
    opt.observe(q.groups.to_groups(grad_w))
    g, h = opt.model(lr)
    project(q, q.grouped() - g / h, h)


def alpha_step(q: QLayer, opt: AmsGrad, grad_w: np.ndarray, lr: float) -> None:
    """One iteration of Algorithm 2.3 on one layer (opt: its alpha-domain moments, [O, G, I_max])."""
    opt.observe(q.alpha_grad(grad_w) + L2 * q.alpha)
    q.alpha = (q.alpha + opt.step(lr)) * q.live
    q.canonical()
