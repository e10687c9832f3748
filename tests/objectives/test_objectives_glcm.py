"""GLCM losses: NumPy transcription of the released tensor operations + loop references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glocal.objectives import (
    RELEASE_EXACT,
    attention_pool,
    av_attention,
    glcm_global_loss,
    glcm_local_loss,
    global_scores,
)

# ----------------------------------------------------------------------------- release (NumPy)


def np_logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    mx = x.max(axis=axis, keepdims=True)
    return (mx + np.log(np.exp(x - mx).sum(axis=axis, keepdims=True))).squeeze(axis)


def np_release_mil_nce(x: np.ndarray) -> float:
    """Released symmetric MIL-NCE on an (N, N, r) tensor: diagonal-masked numerator, denominator
    = concatenation of x and its transpose along dim 1, flattened, LSE."""
    n = x.shape[0]
    nominator = (x * np.eye(n)[:, :, None]).sum(axis=1)
    nominator = np_logsumexp(nominator, axis=1)
    denominator = np.concatenate([x, x.transpose(1, 0, 2)], axis=1).reshape(n, -1)
    denominator = np_logsumexp(denominator, axis=1)
    return float(np.mean(denominator - nominator))


def np_release_local(u: np.ndarray, b: np.ndarray) -> float:
    """u: (B, D, T) video, b: (B, D, S) audio, raw dot products as in the release."""
    bsz, d, t = u.shape
    s = b.shape[2]
    r = s // t
    audio_rows = b.transpose(0, 2, 1).reshape(bsz * s, d)  # rows ordered (video, step)
    video_cols = u.transpose(0, 2, 1).reshape(bsz * t, d)  # columns ordered (video, step)
    prod = audio_rows @ video_cols.T  # (B*S, B*T)
    x = prod.T.reshape(bsz * t, bsz * t, r)
    return np_release_mil_nce(x)


def np_release_global(a: np.ndarray, v: np.ndarray) -> float:
    """a: (B, D) audio, v: (B, D, P) pooled slow map; g_ij,p = a_i . v_jp."""
    g = np.einsum("id,jdp->ijp", a, v)
    return np_release_mil_nce(g)


@pytest.mark.parametrize("bsz", [2, 3])
def test_local_matches_release_transcription(bsz: int) -> None:
    rng = np.random.default_rng(bsz)
    d, t, r = 5, 4, 3
    u = rng.standard_normal((bsz, d, t))
    b = rng.standard_normal((bsz, d, r * t))
    expected = np_release_local(u, b)
    got = glcm_local_loss(torch.from_numpy(u), torch.from_numpy(b), normalize=False, tau=1.0)
    assert got.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    got2 = glcm_local_loss(torch.from_numpy(u), torch.from_numpy(b), **RELEASE_EXACT)
    assert got2.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_global_matches_release_transcription() -> None:
    rng = np.random.default_rng(1)
    bsz, d, p = 3, 6, 49
    a = rng.standard_normal((bsz, d))
    v = rng.standard_normal((bsz, d, p))
    expected = np_release_global(a, v)
    got = glcm_global_loss(torch.from_numpy(a), torch.from_numpy(v), **RELEASE_EXACT)
    assert got.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # (B, D, 7, 7) map is the same thing
    got_hw = glcm_global_loss(torch.from_numpy(a), torch.from_numpy(v.reshape(bsz, d, 7, 7)), **RELEASE_EXACT)
    assert got_hw.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


# ----------------------------------------------------------------------------- loop references


def _lse(xs: list[torch.Tensor]) -> torch.Tensor:
    total = xs[0].exp()
    for x in xs[1:]:
        total = total + x.exp()
    return total.log()


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt((x * x).sum())


def ref_global(a: torch.Tensor, v: torch.Tensor, normalize: bool, tau: float) -> torch.Tensor:
    bsz, _, p = v.shape

    def g(i: int, j: int, q: int) -> torch.Tensor:
        ai, vj = a[i], v[j, :, q]
        if normalize:
            ai, vj = _unit(ai), _unit(vj)
        return (ai * vj).sum() / tau

    total = 0.0
    for i in range(bsz):
        den = [g(i, j, q) for j in range(bsz) for q in range(p)] + [g(j, i, q) for j in range(bsz) for q in range(p)]
        num = [g(i, i, q) for q in range(p)]
        total = total + _lse(den) - _lse(num)
    return total / bsz


def ref_local(u: torch.Tensor, b: torch.Tensor, normalize: bool, tau: float) -> torch.Tensor:
    bsz, _, t = u.shape
    r = b.shape[2] // t

    def ell(i: int, ti: int, j: int, tj: int, k: int) -> torch.Tensor:
        x, y = u[i, :, ti], b[j, :, r * tj + k]
        if normalize:
            x, y = _unit(x), _unit(y)
        return (x * y).sum() / tau

    total = 0.0
    for i in range(bsz):
        for ti in range(t):
            den = []
            for j in range(bsz):
                for tj in range(t):
                    for k in range(r):
                        den.append(ell(i, ti, j, tj, k))  # row: anchor (i,t) vs every audio group
                        den.append(ell(j, tj, i, ti, k))  # column: every anchor vs group (i,t)
            num = [ell(i, ti, i, ti, k) for k in range(r)]
            total = total + _lse(den) - _lse(num)
    return total / (bsz * t)


@pytest.mark.parametrize("normalize,tau", [(True, 0.07), (False, 1.0), (False, 0.5)])
def test_local_matches_loop_reference_value_and_grad(normalize: bool, tau: float) -> None:
    g = torch.Generator().manual_seed(2)
    u = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 4, 6, generator=g, dtype=torch.float64, requires_grad=True)
    out = glcm_local_loss(u, b, normalize=normalize, tau=tau)
    ref = ref_local(u, b, normalize, tau)
    assert torch.allclose(out, ref, rtol=1e-10, atol=1e-12)
    go = torch.autograd.grad(out, (u, b))
    gr = torch.autograd.grad(ref, (u, b))
    for x, y in zip(go, gr):
        assert torch.allclose(x, y, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("normalize,tau", [(True, 0.07), (False, 1.0)])
def test_global_matches_loop_reference_value_and_grad(normalize: bool, tau: float) -> None:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    out = glcm_global_loss(a, v, normalize=normalize, tau=tau)
    ref = ref_global(a, v, normalize, tau)
    assert torch.allclose(out, ref, rtol=1e-10, atol=1e-12)
    go = torch.autograd.grad(out, (a, v))
    gr = torch.autograd.grad(ref, (a, v))
    for x, y in zip(go, gr):
        assert torch.allclose(x, y, rtol=1e-9, atol=1e-12)


def test_global_scores_values() -> None:
    g = torch.Generator().manual_seed(4)
    a = torch.randn(2, 3, generator=g, dtype=torch.float64)
    v = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    s = global_scores(a, v, normalize=True, tau=0.5)
    assert s.shape == (2, 2, 4)
    for i in range(2):
        for j in range(2):
            for p in range(4):
                assert s[i, j, p].item() == pytest.approx((_unit(a[i]) @ _unit(v[j, :, p])).item() / 0.5)
    raw = global_scores(a, v, normalize=False, tau=1.0)
    assert raw[1, 0, 2].item() == pytest.approx((a[1] @ v[0, :, 2]).item())


def test_av_attention_and_pool() -> None:
    g = torch.Generator().manual_seed(5)
    a = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    attn = av_attention(a, v, normalize=False, tau=1.0)
    assert attn.shape == (2, 4)
    vf = v.flatten(2)
    for i in range(2):
        logits = [(a[i] @ vf[i, :, p]).item() for p in range(4)]
        mx = max(logits)
        z = sum(np.exp(x - mx) for x in logits)
        for p in range(4):
            assert attn[i, p].item() == pytest.approx(np.exp(logits[p] - mx) / z, rel=1e-12)
    assert attn.requires_grad
    assert not av_attention(a, v, normalize=True, tau=0.1, stopgrad=True).requires_grad

    fmap = torch.randn(2, 3, 5, 2, 2, generator=g, dtype=torch.float64)
    pooled = attention_pool(attn, fmap)
    assert pooled.shape == (2, 3, 5)
    ff = fmap.flatten(3)
    for i in range(2):
        for t in range(5):
            ref = sum(attn[i, p] * ff[i, :, t, p] for p in range(4))
            assert torch.allclose(pooled[i, :, t], ref, atol=1e-12)
    with pytest.raises(ValueError):
        attention_pool(attn, torch.randn(2, 3, 5, 3))


def test_local_rejects_s_not_multiple_of_t() -> None:
    u = torch.randn(2, 4, 4)
    b = torch.randn(2, 4, 10)
    with pytest.raises(ValueError, match=r"S=10.*T=4"):
        glcm_local_loss(u, b)
    with pytest.raises(ValueError, match=r"S=3.*T=4"):
        glcm_local_loss(u, torch.randn(2, 4, 3))
    with pytest.raises(ValueError):
        glcm_local_loss(u, torch.randn(3, 4, 8))  # batch mismatch


def test_batch_permutation_invariance() -> None:
    g = torch.Generator().manual_seed(6)
    a = torch.randn(4, 6, generator=g, dtype=torch.float64)
    v = torch.randn(4, 6, 9, generator=g, dtype=torch.float64)
    u = torch.randn(4, 6, 3, generator=g, dtype=torch.float64)
    b = torch.randn(4, 6, 9, generator=g, dtype=torch.float64)
    perm = torch.randperm(4, generator=g)
    assert torch.allclose(glcm_global_loss(a, v), glcm_global_loss(a[perm], v[perm]), atol=1e-12)
    assert torch.allclose(glcm_local_loss(u, b), glcm_local_loss(u[perm], b[perm]), atol=1e-12)
    # mismatched pairing changes the loss (positives really are the diagonal)
    shift = torch.tensor([1, 2, 3, 0])
    assert not torch.allclose(glcm_global_loss(a, v), glcm_global_loss(a[shift], v), atol=1e-6)


def test_bad_tau_raises() -> None:
    with pytest.raises(ValueError, match="tau"):
        glcm_global_loss(torch.randn(2, 3), torch.randn(2, 3, 4), tau=0.0)
