import numpy as np
import pytest
import torch

from declib.augment import make_augment, random_affine
from declib.autoencoder import one_cycle_lr, train_autoencoder
from declib.stacked import StackedAutoencoder


def digit_batch(n=64, side=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, side, side)
    x[:, 8:20, 10:18] = torch.rand(n, 12, 8, generator=g)  # a blob well inside the frame
    return x.reshape(n, side * side)


def test_integer_shift_moves_every_pixel_exactly():
    x = digit_batch()
    out = random_affine(x, max_shift=3, generator=torch.Generator().manual_seed(1)).view(-1, 28, 28)
    img = x.view(-1, 28, 28)
    for i in range(len(x)):  # each output is the input rolled by some (dy, dx) with |d| <= 3 (the blob never wraps)
        hits = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                if torch.equal(out[i], torch.roll(img[i], (dy, dx), (0, 1)))]
        assert len(hits) == 1, f"image {i}: not an integer shift within 3 pixels"
    assert out.sum() == pytest.approx(img.sum())  # nothing leaves the frame, nothing is invented


def test_shifts_cover_the_range_and_are_seeded():
    x = digit_batch(400)
    a = random_affine(x, 2, generator=torch.Generator().manual_seed(5))
    b = random_affine(x, 2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    moved = (a != x).any(dim=1).float().mean()
    assert 0.85 < moved < 1.0  # P(no shift) = 1/25


def test_rotation_path_agrees_with_the_exact_shift_for_a_tiny_angle():
    x = digit_batch()
    exact = random_affine(x, 2, 0.0, torch.Generator().manual_seed(3))
    grid = random_affine(x, 2, 1e-7, torch.Generator().manual_seed(3))
    # the same shifts are drawn first; bilinear sampling at whole-pixel offsets reproduces the pixels
    assert torch.allclose(exact, grid, atol=1e-4)


def test_rotation_keeps_the_mass_and_turns_about_the_centre():
    x = digit_batch(16)
    out = random_affine(x, 0, 30.0, torch.Generator().manual_seed(0)).view(-1, 28, 28)
    img = x.view(-1, 28, 28)
    # bilinear resampling of a blob inside the frame keeps its mass, and turning about the centre keeps its centroid
    assert torch.allclose(out.sum((1, 2)), img.sum((1, 2)), rtol=0.03)
    coords = torch.arange(28.0)
    for a, b in ((out, img),):
        ca = (a.sum(2) * coords).sum(1) / a.sum((1, 2))
        cb = (b.sum(2) * coords).sum(1) / b.sum((1, 2))
        assert (ca - cb).abs().max() < 1.0
    assert (out - img).abs().amax((1, 2)).min() > 0.05  # every image changed


@pytest.mark.parametrize("kwargs, match", [({"max_shift": -1}, "max_shift"), ({"max_shift": 1.5}, "max_shift"),
                                           ({"max_rotation": 200}, "max_rotation")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_augment(**kwargs)


def test_non_square_input_is_refused():
    with pytest.raises(ValueError, match="square"):
        random_affine(torch.zeros(2, 10), 1)


def test_one_cycle_rate_rises_then_falls():
    total, peak = 1000, 2e-3
    rates = [one_cycle_lr(s, total, peak) for s in range(total)]
    top = int(np.argmax(rates))
    assert rates[0] == pytest.approx(peak / 25) and rates[top] == pytest.approx(peak, rel=1e-3)
    assert 290 <= top <= 310
    assert all(a <= b + 1e-15 for a, b in zip(rates[:top], rates[1:top + 1]))
    assert all(a >= b - 1e-15 for a, b in zip(rates[top:], rates[top + 1:]))
    assert rates[-1] < peak / 25 / 1000


def test_training_follows_the_one_cycle_rate(record_lr):
    seen = record_lr(torch.optim.Adam)
    model = StackedAutoencoder((16, 8, 4), seed=0)
    train_autoencoder(model, torch.rand(64, 16), iterations=20, batch_size=16, lr=1e-2, lr_schedule="onecycle",
                      progress=False)
    assert seen == pytest.approx([one_cycle_lr(s, 20, 1e-2) for s in range(20)])


def test_bf16_training_learns_and_keeps_float32_weights():
    X = digit_batch(256) * 0.9
    losses = {}
    for precision in ("fp32", "bf16"):
        model = StackedAutoencoder((784, 64, 8), seed=0)
        h = train_autoencoder(model, X, epochs=15, batch_size=64, lr=3e-3, precision=precision, progress=False)
        losses[precision] = h["loss"]
        assert all(p.dtype == torch.float32 for p in model.parameters())
    for precision, loss in losses.items():
        assert loss[-1] < 0.5 * loss[0], precision
    assert losses["bf16"][-1] == pytest.approx(losses["fp32"][-1], rel=0.3)
    with pytest.raises(ValueError, match="precision"):
        train_autoencoder(StackedAutoencoder((16, 4)), torch.rand(8, 16), iterations=1, precision="fp16",
                          progress=False)


def test_augmented_training_reconstructs_the_augmented_digit():
    X = digit_batch(128)
    calls = []

    def augment(x, generator=None):
        calls.append(len(x))
        return random_affine(x, 2, 0.0, generator)

    model = StackedAutoencoder((784, 32, 8), seed=0)
    train_autoencoder(model, X, iterations=6, batch_size=32, augment=augment, progress=False)
    assert calls == [32] * 6


def test_shift_images_moves_right_and_down_and_fills_with_zeros():
    from declib.augment import shift_images

    x = torch.arange(1, 2 * 16 + 1, dtype=torch.float32).reshape(2, 16)  # two 4×4 images
    out = shift_images(x, torch.tensor([[1, 0], [-2, 1]])).reshape(2, 4, 4)
    img = x.reshape(2, 4, 4)
    assert torch.equal(out[0, :, 1:], img[0, :, :3]) and torch.equal(out[0, :, 0], torch.zeros(4))  # one right
    assert torch.equal(out[1, 1:, :2], img[1, :3, 2:]) and out[1, 0].abs().sum() == 0  # two left, one down
    assert out[1, :, 2:].abs().sum() == 0
    with pytest.raises(ValueError, match="shifts: expected shape \\(2, 2\\)"):
        shift_images(x, torch.zeros(3, 2))
