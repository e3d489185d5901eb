"""The OT term against exact references and against geomloss's SamplesLoss."""

from __future__ import annotations

import pytest
import torch
from geomloss import SamplesLoss

from lossval.ot import SinkhornToReference, diameter_bound


@pytest.fixture()
def clouds() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(40, 5, generator=g), torch.randn(60, 5, generator=g)


@pytest.mark.parametrize("solver", ["fast", "geomloss"])
def test_divergence_of_a_cloud_with_itself_is_zero(clouds, solver):
    _, ref = clouds
    ot = SinkhornToReference(ref, solver=solver)
    assert abs(float(ot(torch.ones(len(ref)), ref))) < 1e-4


@pytest.mark.parametrize("normalize", [True, False])
def test_fast_solver_matches_samplesloss(clouds, normalize):
    x, ref = clouds
    w = torch.rand(40, generator=torch.Generator().manual_seed(1)) + 0.5
    fast = SinkhornToReference(ref, normalize=normalize, diameter=diameter_bound(x, ref))
    wf = w.clone().requires_grad_()
    value = fast(wf, x)
    value.backward()
    # geomloss's SamplesLoss itself, called as the authors call it
    ws = w.clone().requires_grad_()
    alpha = ws / ws.sum() if normalize else ws
    beta = torch.full((60,), 1 / 60 if normalize else 1.0)
    reference = SamplesLoss("sinkhorn", p=2, blur=0.05, scaling=0.5, diameter=fast.diameter, backend="tensorized")
    expected = reference(alpha, x, beta, ref)
    expected.backward()
    assert value.item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-4)
    assert torch.allclose(wf.grad, ws.grad, rtol=1e-3, atol=1e-5)


def test_batched_call_equals_one_call_per_batch(clouds):
    x, ref = clouds
    ot = SinkhornToReference(ref)
    w = torch.rand(4, 10) + 0.5
    batched = ot(w, x.view(4, 10, 5))
    single = torch.stack([ot(w[b], x.view(4, 10, 5)[b]) for b in range(4)])
    assert torch.allclose(batched, single, atol=1e-5)


def test_gradient_reaches_the_weights_and_far_rows_are_pushed_down(clouds):
    x, ref = clouds
    x = x.clone()
    x[:5] += 6.0  # five rows far from the reference
    ot = SinkhornToReference(ref, diameter=diameter_bound(x, ref))
    w = torch.ones(40, requires_grad=True)
    ot(w, x).backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()
    # descending the OT term lowers the far rows' weights most
    assert w.grad[:5].min() > w.grad[5:].max()


def test_normalized_masses_make_the_term_scale_invariant(clouds):
    x, ref = clouds
    ot = SinkhornToReference(ref, normalize=True)
    w = torch.rand(40) + 0.5
    assert float(ot(w, x)) == pytest.approx(float(ot(3 * w, x)), rel=1e-5)


def test_divergence_grows_with_shift(clouds):
    _, ref = clouds
    ot = SinkhornToReference(ref, diameter=20.0)
    values = [float(ot(torch.ones(60), ref + shift)) for shift in (0.0, 0.5, 2.0)]
    assert values[0] < values[1] < values[2]
    # W2^2/2 of a pure translation by t in 5-D is |t|^2/2 = 5 t^2 / 2
    assert values[2] == pytest.approx(5 * 2.0**2 / 2, rel=0.05)


def test_shape_errors_name_the_tensor(clouds):
    x, ref = clouds
    ot = SinkhornToReference(ref)
    with pytest.raises(ValueError, match="x must be"):
        ot(torch.ones(40), x[:, :3])
    with pytest.raises(ValueError, match="solver"):
        SinkhornToReference(ref, solver="keops")


def test_in_place_softmin_is_the_autograd_one_to_the_bit():
    from lossval.ot import softmin

    g = torch.Generator().manual_seed(3)
    C, h = torch.rand(3, 7, 11, generator=g) * 40, torch.randn(3, 11, generator=g)
    for eps in (100.0, 0.05, 0.0025):  # 0.0025 clamps most exponents
        with torch.no_grad():
            fast = softmin(eps, C, h)
        tracked = softmin(eps, C, h.clone().requires_grad_())
        assert torch.equal(fast, tracked.detach())


def test_the_trimmed_loop_solves_the_same_problem_without_the_repeated_temperatures(clouds):
    x, ref = clouds
    w = torch.rand(40, generator=torch.Generator().manual_seed(2)) + 0.5
    d = diameter_bound(x, ref)

    def solve(**options):
        ot = SinkhornToReference(ref, diameter=d, **{"scaling": 0.2, **options})
        wg = w.clone().requires_grad_()
        value = ot(wg, x)
        value.backward()
        return ot, value.item(), wg.grad

    geomloss_loop, value, grad = solve()
    trimmed, value_t, grad_t = solve(loop="trimmed")
    _, value_c, grad_c = solve(scaling=0.95)  # near-converged: about 50 temperatures
    eps_list = geomloss_loop.eps_list
    assert trimmed._cooling() == eps_list[2:-1] and eps_list[:2] == pytest.approx([d**2, d**2]) and eps_list[-1] == 0.05**2
    assert value_t == pytest.approx(value, rel=0.02)  # on this small problem, 1.158 against 1.143 (converged: 1.202)
    assert torch.corrcoef(torch.stack([grad_t, grad]))[0, 1] > 0.999
    # no further from the converged solve than geomloss's loop is
    assert abs(value_t - value_c) <= 1.5 * abs(value - value_c) + 1e-4
    assert (grad_t - grad_c).norm() <= 1.5 * (grad - grad_c).norm() + 1e-5


def test_the_trimmed_loop_on_a_reference_part_too_large_for_one_call_is_the_same_number(clouds, monkeypatch):
    import lossval.ot as ot_module

    _, ref = clouds
    whole = SinkhornToReference(ref, loop="trimmed")  # (60, 60) costs in one call
    monkeypatch.setattr(ot_module, "MAX_CHUNK_ENTRIES", 500)  # now a block of 8 rows at a time
    blocks = SinkhornToReference(ref, loop="trimmed")
    assert blocks.part_self_terms.item() == pytest.approx(whole.part_self_terms.item(), rel=1e-5)


def test_the_trimmed_loop_needs_the_fast_solver(clouds):
    _, ref = clouds
    with pytest.raises(ValueError, match="loop must be one of"):
        SinkhornToReference(ref, loop="short")
    with pytest.raises(ValueError, match="loop='trimmed' needs solver='fast'"):
        SinkhornToReference(ref, loop="trimmed", solver="geomloss")
