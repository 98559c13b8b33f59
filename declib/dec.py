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

from .autoencoder import _as_data, _autocast
from .config import resolve_device, resolve_precision
from .kmeans import KMeans
from .metrics import cluster_accuracy, nmi

__all__ = ["soft_assignment", "target_distribution", "kl_divergence", "kl_gradients", "DEC"]


def _pairwise_sq(z: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    return ((z[:, None, :] - centroids[None, :, :]) ** 2).sum(dim=2)


def soft_assignment(z: torch.Tensor, centroids: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """q_ij: the Student's t similarity of embedded point z_i to centroid μ_j, normalised over j. Shape (n, K)."""
    if z.ndim != 2 or centroids.ndim != 2 or z.shape[1] != centroids.shape[1]:
        raise ValueError(f"z and centroids: expected (n, D) and (K, D), got {tuple(z.shape)} and "
                         f"{tuple(centroids.shape)}")
    kernel = (1.0 + _pairwise_sq(z, centroids) / alpha) ** (-(alpha + 1.0) / 2.0)
    return kernel / kernel.sum(dim=1, keepdim=True)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """p_ij = (q_ij² / f_j) / Σ_j' (q_ij'² / f_j'), with f_j = Σ_i q_ij (computed over all rows of q)."""
    weight = q**2 / q.sum(dim=0)
    return weight / weight.sum(dim=1, keepdim=True)


def kl_divergence(p: torch.Tensor, q: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """KL(P‖Q) = Σ_i Σ_j p_ij log(p_ij / q_ij) (``reduction="mean"``: divided by the number of rows)."""
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction: expected 'sum' or 'mean', got {reduction!r}")
    kl = (p * (torch.log(p.clamp_min(1e-30)) - torch.log(q.clamp_min(1e-30)))).sum()
    return kl / len(p) if reduction == "mean" else kl


def kl_gradients(z: torch.Tensor, centroids: torch.Tensor, p: torch.Tensor, alpha: float = 1.0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """∂L/∂z_i and ∂L/∂μ_j of L = KL(P‖Q) with P fixed, written out as in the paper (see the module docstring)."""
    q = soft_assignment(z, centroids, alpha)
    d = 1.0 / (1.0 + _pairwise_sq(z, centroids) / alpha)  # d_ij
    w = (alpha + 1.0) / alpha * d * (p - q)  # (n, K)
    diff = z[:, None, :] - centroids[None, :, :]  # z_i − μ_j, (n, K, D)
    grad_z = (w[:, :, None] * diff).sum(dim=1)
    grad_mu = -(w[:, :, None] * diff).sum(dim=0)
    return grad_z, grad_mu


class DEC(nn.Module):
    """Deep Embedded Clustering: an encoder plus K centroids μ_j (an ``nn.Parameter``), trained on KL(P‖Q).

    ``decoder`` (optional) turns it into IDEC: the decoder is kept and the loss becomes
    L_r + γ L_c (Guo et al., 2017: reconstruction L_r plus γ = 0.1 times the clustering loss L_c), so the embedding
    keeps the local structure the autoencoder learned.

    Fitted attributes: ``labels_``, ``cluster_centers_``, ``n_iter_``, ``history_`` (per refresh of P: ``iteration``,
    ``loss`` = KL(P‖Q)/n over all points, ``changed`` = fraction of labels that changed, and ``acc``/``nmi`` when
    labels are passed to ``fit`` for reporting), ``init_labels_`` (the k-means labels it started from) and
    ``seconds_``.
    """

    def __init__(self, encoder: nn.Module, n_clusters: int, alpha: float = 1.0, decoder: nn.Module | None = None,
                 gamma: float = 0.1):
        super().__init__()
        if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
            raise ValueError(f"n_clusters: expected a positive integer, got {n_clusters!r}")
        if not alpha > 0:
            raise ValueError(f"alpha: expected a number > 0, got {alpha!r}")
        self.encoder, self.decoder = encoder, decoder
        self.n_clusters, self.alpha, self.gamma = int(n_clusters), float(alpha), float(gamma)
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
        q = torch.cat([soft_assignment(self._embed_batch(X[s : s + batch_size]), self.centroids, self.alpha)
                       for s in range(0, len(X), batch_size)])
        self.train(was_training)
        return q

    @torch.no_grad()
    def embed(self, X, batch_size: int = 8192) -> np.ndarray:
        """The embedding z = f(x) of every row of ``X`` (float32 NumPy)."""
        device = next(self.encoder.parameters()).device
        X = _as_data(X, device)
        self.eval()
        return torch.cat([self.encoder(X[s : s + batch_size]) for s in range(0, len(X), batch_size)]).cpu().numpy()

    def fit(self, X, y=None, *, n_init: int = 20, batch_size: int = 256, lr: float = 0.01, optimizer: str = "sgd",
            momentum: float = 0.9, update_interval: int = 140, tol: float = 0.001, max_iter: int = 20_000,
            device=None, seed: int = 0, progress: bool = True, init_centroids=None, callback=None,
            precision: str = "fp32", augment=None) -> "DEC":
        """Initialise μ by k-means (``n_init`` restarts) on the embedding, then train on KL(P‖Q).

        ``init_centroids`` (K × D) skips the k-means and starts from the given centroids. ``y`` is used for
        reporting only (accuracy/NMI in ``history_``), never for training. ``callback(iteration, model)`` is called
        at every refresh of P (e.g. to record the embedding over training time). ``precision="bf16"`` runs the
        encoder (and IDEC's decoder) under bfloat16 autocast where supported (:func:`declib.config.resolve_precision`);
        q, p and the loss stay float32. The initial embedding for k-means is always computed in float32.

        ``augment`` (a callable ``augment(x, generator)``, see :mod:`declib.augment`) turns this into DEC-DA's
        clustering stage (Guo et al., 2018): the target P is computed from the clean digits, the minibatch's Q from
        augmented copies of them, so the encoder must give a shifted or turned digit the same cluster.
        """
        t0 = time.perf_counter()
        device = resolve_device(device)
        self.precision_ = "fp32"  # the k-means start sees the float32 embedding
        self.to(device)
        X = _as_data(X, device)
        n = X.shape[0]
        if self.n_clusters > n:
            raise ValueError(f"n_clusters: expected at most the number of samples ({n}), got {self.n_clusters}")
        if y is not None and len(y) != n:
            raise ValueError(f"y: expected {n} labels (one per row of X), got {len(y)}")
        for name, value in (("update_interval", update_interval), ("max_iter", max_iter), ("batch_size", batch_size),
                            ("n_init", n_init)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        first = next((m for m in self.encoder.modules() if isinstance(m, nn.Linear)), None)
        if first is not None and first.in_features != X.shape[1]:
            raise ValueError(f"X: expected {first.in_features} features (the encoder's input width), got {X.shape[1]}")
        z = torch.from_numpy(self.embed(X)).to(device)
        if init_centroids is None:
            km = KMeans(self.n_clusters, n_init=n_init, seed=seed, device=device, keep_history=False).fit(z)
            centers, self.init_labels_ = km.cluster_centers_, km.labels_
        else:
            centers = np.asarray(init_centroids, dtype=np.float32)
            if centers.shape != (self.n_clusters, z.shape[1]):
                raise ValueError(f"init_centroids: expected shape ({self.n_clusters}, {z.shape[1]}) (n_clusters × "
                                 f"embedding width), got {centers.shape}")
            self.init_labels_ = soft_assignment(z, torch.from_numpy(centers).to(device)).argmax(1).cpu().numpy()
        self.centroids = nn.Parameter(torch.from_numpy(centers).to(device, torch.float32))
        self.precision_ = resolve_precision(precision, device)
        params = list(self.parameters())
        if optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
        elif optimizer == "adam":
            opt = torch.optim.Adam(params, lr=lr)
        else:
            raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {optimizer!r}")
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        history: dict[str, list] = {"iteration": [], "loss": [], "changed": []}
        if y is not None:
            history.update(acc=[], nmi=[])
        labels_last = torch.from_numpy(self.init_labels_).to(device)
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter, desc="DEC" if self.decoder is None else "IDEC", disable=not progress,
                   mininterval=1.0)
        self.train()
        perm, pos, it = torch.randperm(n, generator=generator, device=device), 0, 0
        p_all = None
        while True:
            if it % update_interval == 0 or it >= max_iter:  # refresh the target from the whole data set
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
                if (it > 0 and changed < tol) or it >= max_iter:
                    break
            if pos + batch_size > n:
                perm, pos = torch.randperm(n, generator=generator, device=device), 0
            idx = perm[pos : pos + batch_size]
            pos += batch_size
            xb = X[idx]
            if augment is not None:
                xb = augment(xb, generator)
            zb = self._embed_batch(xb)
            qb = soft_assignment(zb, self.centroids, self.alpha)
            loss = kl_divergence(p_all[idx], qb, "mean")
            if self.decoder is not None:  # IDEC: L_r + γ L_c
                with _autocast(self.precision_, device):
                    x_hat = self.decoder(zb).float()
                loss = F.mse_loss(x_hat, xb) + self.gamma * loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
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
        if self.centroids is None:
            raise RuntimeError("this DEC is not fitted yet: call fit(X) first")
        device = self.centroids.device
        Xt = _as_data(X, device)
        return self._q_all(Xt).argmax(dim=1).cpu().numpy()

    def fit_predict(self, X, y=None, **kwargs) -> np.ndarray:
        """``fit(X, y, **kwargs)`` and return ``labels_``."""
        return self.fit(X, y, **kwargs).labels_
