r"""Deep Embedded Clustering (Xie, Girshick & Farhadi, ICML 2016), and IDEC (Guo et al., IJCAI 2017) as an option.

DEC clusters in the feature space of an encoder :math:`z_i = f_\theta(x_i)` and improves both together.

* **Soft assignment** with a Student's t kernel (α degrees of freedom, α = 1):

  .. math:: q_{ij} = \frac{(1 + \lVert z_i - \mu_j \rVert^2 / \alpha)^{-\frac{\alpha+1}{2}}}
                          {\sum_{j'} (1 + \lVert z_i - \mu_{j'} \rVert^2 / \alpha)^{-\frac{\alpha+1}{2}}}

* **Target distribution**, which sharpens confident assignments and divides by the soft cluster frequency
  :math:`f_j = \sum_i q_{ij}` so that large clusters do not swallow small ones:

  .. math:: p_{ij} = \frac{q_{ij}^2 / f_j}{\sum_{j'} q_{ij'}^2 / f_{j'}}

* **Objective** :math:`L = \mathrm{KL}(P \Vert Q) = \sum_i \sum_j p_{ij} \log \frac{p_{ij}}{q_{ij}}`, minimised
  over θ and the centroids μ with P held fixed between refreshes. Its gradients (the paper's eq. 4–5), with
  :math:`d_{ij} = (1 + \lVert z_i - \mu_j \rVert^2/\alpha)^{-1}`:

  .. math::

      \frac{\partial L}{\partial z_i} = \frac{\alpha+1}{\alpha} \sum_j d_{ij} (p_{ij} - q_{ij})(z_i - \mu_j),
      \qquad
      \frac{\partial L}{\partial \mu_j} = -\frac{\alpha+1}{\alpha} \sum_i d_{ij} (p_{ij} - q_{ij})(z_i - \mu_j).

Training (:meth:`DEC.fit`): centroids from k-means (20 restarts) on the initial embedding; then minibatch SGD on L,
where P is computed from the **whole** data set every ``update_interval`` steps and held fixed in between; stop when
fewer than ``tol`` (0.1 %) of the points change cluster between two refreshes. The minibatch loss is the batch mean
of :math:`\sum_j p_{ij} \log(p_{ij}/q_{ij})`, i.e. L/n on a batch.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._util import (ParamsMixin, as_float_array, batched, check_fitted, check_int, check_number, make_optimizer,
                    minibatches, torch_generator)
from .autoencoder import _as_data, _autocast
from .config import resolve_device, resolve_precision
from .kmeans import KMeans
from .metrics import cluster_accuracy, nmi

__all__ = ["soft_assignment", "target_distribution", "kl_divergence", "kl_gradients", "DEC"]


def _pairwise_sq(z: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    return ((z[:, None, :] - centroids[None, :, :]) ** 2).sum(dim=2)


def soft_assignment(z: torch.Tensor, centroids: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """q_ij: the Student's t similarity of embedded point z_i to centroid μ_j, normalised over j. Shape (n, K).
    Notebook 05 §1."""
    if z.ndim != 2 or centroids.ndim != 2 or z.shape[1] != centroids.shape[1]:
        raise ValueError(f"z and centroids: expected (n, D) and (K, D), got {tuple(z.shape)} and "
                         f"{tuple(centroids.shape)}")
    kernel = (1.0 + _pairwise_sq(z, centroids) / alpha) ** (-(alpha + 1.0) / 2.0)
    return kernel / kernel.sum(dim=1, keepdim=True)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """p_ij = (q_ij² / f_j) / Σ_j' (q_ij'² / f_j'), with f_j = Σ_i q_ij (computed over all rows of q).
    Notebook 05 §2."""
    weight = q**2 / q.sum(dim=0)
    return weight / weight.sum(dim=1, keepdim=True)


def kl_divergence(p: torch.Tensor, q: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """KL(P‖Q) = Σ_i Σ_j p_ij log(p_ij / q_ij) (``reduction="mean"``: divided by the number of rows). Notebook 05 §3."""
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction: expected 'sum' or 'mean', got {reduction!r}")
    kl = (p * (torch.log(p.clamp_min(1e-30)) - torch.log(q.clamp_min(1e-30)))).sum()
    return kl / len(p) if reduction == "mean" else kl


def kl_gradients(z: torch.Tensor, centroids: torch.Tensor, p: torch.Tensor, alpha: float = 1.0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """∂L/∂z_i and ∂L/∂μ_j of L = KL(P‖Q) with P fixed, written out as in the paper (see the module docstring).
    Notebook 05 §3."""
    q = soft_assignment(z, centroids, alpha)
    d = 1.0 / (1.0 + _pairwise_sq(z, centroids) / alpha)  # d_ij
    w = (alpha + 1.0) / alpha * d * (p - q)  # (n, K)
    diff = z[:, None, :] - centroids[None, :, :]  # z_i − μ_j, (n, K, D)
    grad_z = (w[:, :, None] * diff).sum(dim=1)
    grad_mu = -(w[:, :, None] * diff).sum(dim=0)
    return grad_z, grad_mu


class DEC(ParamsMixin, nn.Module):
    """Deep Embedded Clustering: an encoder plus K centroids μ_j (an ``nn.Parameter``), trained on KL(P‖Q).

    Notebook 05 derives every piece (§1 soft assignment, §2 target distribution, §3 the gradients, §4–5 training,
    §7 IDEC).
    ``decoder`` (optional) turns it into IDEC: the decoder is kept and the loss becomes L_r + γ L_c (Guo et al.,
    2017: reconstruction L_r plus γ = 0.1 times the clustering loss L_c), so the embedding keeps the local structure
    the autoencoder learned.

    Hyperparameters (stored unchanged, checked by :meth:`fit`; ``get_params``/``set_params``/``sklearn.base.clone``
    work, a clone gets a deep copy of the encoder): ``n_clusters`` K, ``alpha`` (the kernel's degrees of freedom),
    ``n_init`` k-means restarts for the start, minibatch ``batch_size``, ``optimizer`` ("sgd" with ``momentum``, or
    "adam") with rate ``lr``, ``update_interval`` steps between refreshes of P, ``tol`` (stop when fewer than this
    fraction of the points changed cluster between two refreshes), ``max_iter`` steps at most, ``precision`` ("bf16":
    the encoder, and IDEC's decoder, under bfloat16 autocast where supported, :func:`declib.config.resolve_precision`;
    q, p and the loss stay float32; the k-means start always sees the float32 embedding), ``augment`` (a callable
    ``augment(x, generator)``, :mod:`declib.augment`: DEC-DA's clustering stage, Guo et al. 2018 — P from the clean
    digits, the minibatch's Q from augmented copies), ``seed``, ``device`` and ``progress``. The defaults are the
    paper's (SGD 0.01, momentum 0.9, batch 256, T = 140, tol 0.1 %, 20 restarts).

    Fitted attributes: ``labels_``, ``cluster_centers_``, ``n_iter_``, ``history_`` (per refresh of P: ``iteration``,
    ``loss`` = KL(P‖Q)/n over all points, ``changed`` = fraction of labels that changed, and ``acc``/``nmi`` when
    labels are passed to ``fit`` for reporting), ``init_labels_`` (the k-means labels it started from),
    ``precision_`` and ``seconds_``.
    """

    def __init__(self, encoder: nn.Module, n_clusters: int = 10, *, alpha: float = 1.0,
                 decoder: nn.Module | None = None, gamma: float = 0.1, n_init: int = 20, batch_size: int = 256,
                 optimizer: str = "sgd", lr: float = 0.01, momentum: float = 0.9, update_interval: int = 140,
                 tol: float = 0.001, max_iter: int = 20_000, precision: str = "fp32", augment=None, seed: int = 0,
                 device=None, progress: bool = True):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.n_clusters, self.alpha, self.gamma = n_clusters, alpha, gamma
        self.n_init, self.batch_size, self.optimizer = n_init, batch_size, optimizer
        self.lr, self.momentum = lr, momentum
        self.update_interval, self.tol, self.max_iter = update_interval, tol, max_iter
        self.precision, self.augment, self.seed, self.device, self.progress = precision, augment, seed, device, progress
        self.centroids: nn.Parameter | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """q for a batch of inputs."""
        return soft_assignment(self.encoder(x), self.centroids, self.alpha)

    def _embed_batch(self, x: torch.Tensor) -> torch.Tensor:
        """z = f(x) under the fitted precision (bfloat16 autocast for the encoder), returned as float32."""
        with _autocast(getattr(self, "precision_", "fp32"), x.device):
            return self.encoder(x).float()

    @torch.no_grad()
    def _q_all(self, X: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        was_training = self.training
        self.eval()
        q = batched(lambda x: soft_assignment(self._embed_batch(x), self.centroids, self.alpha), X,
                    batch_size=batch_size)
        self.train(was_training)
        return q

    @torch.no_grad()
    def embed(self, X, batch_size: int = 8192) -> np.ndarray:
        """The embedding z = f(x) of every row of ``X`` (float32 NumPy), where the encoder's weights are."""
        X = _as_data(X, next(self.encoder.parameters()).device)
        was_training = self.training
        self.eval()
        z = batched(self.encoder, X, batch_size=batch_size).cpu().numpy()
        self.train(was_training)
        return z

    def _check_params(self, n: int) -> None:
        check_int(self.n_clusters, "n_clusters", 1)
        if self.n_clusters > n:
            raise ValueError(f"n_clusters: expected at most the number of samples ({n}), got {self.n_clusters}")
        check_number(self.alpha, "alpha", 0.0, low_open=True)
        check_number(self.gamma, "gamma", 0.0)
        for name in ("update_interval", "max_iter", "batch_size", "n_init"):
            check_int(getattr(self, name), name, 1)
        check_number(self.tol, "tol", 0.0, 1.0)

    def _start(self, z: torch.Tensor, init_centroids, device) -> np.ndarray:
        """The initial centroids μ_j: k-means with ``n_init`` restarts on the embedding, or ``init_centroids``."""
        if init_centroids is None:
            km = KMeans(self.n_clusters, n_init=self.n_init, seed=self.seed, device=device, keep_history=False).fit(z)
            self.init_labels_ = km.labels_
            return km.cluster_centers_
        centers = as_float_array(init_centroids, "init_centroids", np.float32)
        if centers.shape != (self.n_clusters, z.shape[1]):
            raise ValueError(f"init_centroids: expected shape ({self.n_clusters}, {z.shape[1]}) (n_clusters × "
                             f"embedding width), got {centers.shape}")
        self.init_labels_ = soft_assignment(z, torch.from_numpy(centers).to(device)).argmax(1).cpu().numpy()
        return centers

    def _step(self, xb: torch.Tensor, pb: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        """One minibatch step on KL(P‖Q) (IDEC: L_r + γ L_c) with the batch's rows of the fixed target P."""
        zb = self._embed_batch(xb)
        loss = kl_divergence(pb, soft_assignment(zb, self.centroids, self.alpha), "mean")
        if self.decoder is not None:  # IDEC: L_r + γ L_c
            with _autocast(self.precision_, xb.device):
                x_hat = self.decoder(zb).float()
            loss = F.mse_loss(x_hat, xb) + self.gamma * loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def fit(self, X, y=None, *, init_centroids=None, callback=None) -> "DEC":
        """Initialise μ by k-means on the embedding, then train on KL(P‖Q); returns ``self``.

        Every ``update_interval`` steps the target P is recomputed from the whole data set (and held fixed in
        between); training stops when fewer than ``tol`` of the labels changed since the last refresh, or after
        ``max_iter`` steps. ``init_centroids`` (K × D) skips the k-means and starts from the given centroids. ``y``
        is used for reporting only (accuracy/NMI in ``history_``), never for training. ``callback(iteration,
        model)`` is called at every refresh of P (e.g. to record the embedding over training time).
        """
        t0 = time.perf_counter()
        device = resolve_device(self.device)
        self.to(device)
        X = _as_data(X, device)
        n = X.shape[0]
        self._check_params(n)
        if y is not None and len(y) != n:
            raise ValueError(f"y: expected {n} labels (one per row of X), got {len(y)}")
        first = next((m for m in self.encoder.modules() if isinstance(m, nn.Linear)), None)
        if first is not None and first.in_features != X.shape[1]:
            raise ValueError(f"X: expected {first.in_features} features (the encoder's input width), got {X.shape[1]}")
        self.precision_ = "fp32"  # the k-means start sees the float32 embedding
        z = torch.from_numpy(self.embed(X)).to(device)
        centers = self._start(z, init_centroids, device)
        self.centroids = nn.Parameter(torch.from_numpy(centers).to(device, torch.float32))
        self.precision_ = resolve_precision(self.precision, device)
        opt = make_optimizer(self.optimizer, self.parameters(), self.lr, self.momentum)
        generator = torch_generator(self.seed, device)
        batches = minibatches(n, self.batch_size, generator, device, drop_last=self.batch_size < n)
        history: dict[str, list] = {"iteration": [], "loss": [], "changed": []}
        if y is not None:
            history.update(acc=[], nmi=[])
        labels_last = torch.from_numpy(self.init_labels_).to(device)
        from tqdm.auto import tqdm

        bar = tqdm(total=self.max_iter, desc="DEC" if self.decoder is None else "IDEC", disable=not self.progress,
                   mininterval=1.0)
        self.train()
        it = 0
        while True:
            if it % self.update_interval == 0 or it >= self.max_iter:  # refresh the target from the whole data set
                q_all = self._q_all(X)
                p_all = target_distribution(q_all)
                labels = q_all.argmax(dim=1)
                changed = float((labels != labels_last).float().mean())
                labels_last = labels
                history["iteration"].append(it)
                history["loss"].append(float(kl_divergence(p_all, q_all, "mean")))
                history["changed"].append(changed)
                if y is not None:
                    lab = labels.cpu().numpy()
                    history["acc"].append(cluster_accuracy(y, lab))
                    history["nmi"].append(nmi(y, lab))
                    bar.set_postfix(acc=f"{history['acc'][-1]:.3f}", changed=f"{changed:.4f}")
                if callback is not None:
                    callback(it, self)
                if (it > 0 and changed < self.tol) or it >= self.max_iter:
                    break
            idx = next(batches)
            xb = X[idx] if self.augment is None else self.augment(X[idx], generator)
            self._step(xb, p_all[idx], opt)
            it += 1
            bar.update(1)
        bar.close()
        self.eval()
        self.labels_ = labels_last.cpu().numpy()
        self.cluster_centers_ = self.centroids.detach().cpu().numpy()
        self.n_iter_ = it
        self.history_ = history
        self.seconds_ = time.perf_counter() - t0
        return self

    def predict(self, X) -> np.ndarray:
        """The cluster of largest q_ij for every row of ``X``."""
        check_fitted(self, "centroids")
        return self._q_all(_as_data(X, self.centroids.device)).argmax(dim=1).cpu().numpy()

    def fit_predict(self, X, y=None, **fit_params) -> np.ndarray:
        """``fit(X, y, **fit_params)`` and return ``labels_``."""
        return self.fit(X, y, **fit_params).labels_
