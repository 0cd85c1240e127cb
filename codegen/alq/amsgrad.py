"""AMSGrad (the thesis' optimizer framework, Eq. 2.10): moments of a gradient, and the quadratic model
``g^T d + d^T H d / 2`` with g = a m and H = sqrt(v_hat) (Eq. 2.12) that pruning and the basis search read."""
from __future__ import annotations

import numpy as np

BETA1, BETA2 = 0.9, 0.999
EPS = 1e-8


class AmsGrad:
    def __init__(self, shape):
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.v_hat = np.zeros(shape)
        self.t = 0

    def observe(self, grad: np.ndarray) -> None:
        """One step of the moments (bias-corrected, as the thesis' unbiased moments)."""
        self.t += 1
        self.m = BETA1 * self.m + (1 - BETA1) * grad
        self.v = BETA2 * self.v + (1 - BETA2) * grad**2
        self.v_hat = np.maximum(self.v_hat, self.v / (1 - BETA2**self.t))

    def model(self, lr: float) -> tuple[np.ndarray, np.ndarray]:
        """(g, H): the linear and (diagonal) quadratic terms of the step's model function."""
        return lr * self.m / (1 - BETA1**self.t), np.sqrt(self.v_hat) + EPS

    def step(self, lr: float) -> np.ndarray:
        """The unconstrained minimizer's increment -g / H."""
        g, h = self.model(lr)
        return -g / h
