"""``optimal_clip`` on n-D tensors: one clip for the whole tensor, or one per channel with ``axis``."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qtheory import Laplace, optimal_clip
from qtheory.empirical import EmpiricalMSE, PerChannelClips


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), data=st.data(),
       bits=st.integers(2, 5), grid=st.sampled_from(["narrow", "int", "midrise", "unsigned"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_each_channel_gets_the_optimum_of_its_own_slice(shape, data, bits, grid, dtype, seed):
    x = np.random.default_rng(seed).laplace(size=shape).astype(dtype)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    r = optimal_clip(x, bits, grid=grid, axis=axis)
    assert isinstance(r, PerChannelClips) and r.alpha.shape == (shape[axis],)
    for c in range(shape[axis]):
        ch = np.take(x, c, axis=axis).ravel()
        one = EmpiricalMSE(ch).optimal_clip(bits, grid=grid)
        # the same global optimum; the MSE to rounding: a reconstructed level is off by a few ulps
        # of |x| (e ~ eps·|x|), so the error sum moves by 4·eps·sqrt(m·p) + 4·eps²·p (p = E[x²])
        eps, p = np.finfo(float).eps, float(np.mean(np.square(ch, dtype=float)))
        tol = 4 * eps * np.sqrt(max(one.mse, 0.0) * p) + 4 * eps**2 * p
        assert r.mse[c] == pytest.approx(one.mse, rel=1e-12, abs=tol)


@pytest.mark.parametrize("order", ["C", "F"])
def test_a_tensor_without_axis_is_one_channel(order, rng):
    w = np.asarray(rng.laplace(size=(6, 4, 3)), order=order)
    r = optimal_clip(w, 4, grid="narrow")
    flat = optimal_clip(w.ravel(), 4, grid="narrow")
    assert (r.alpha, r.mse) == (flat.alpha, flat.mse)


@pytest.mark.parametrize("kwargs, name", [
    ({"axis": 3}, "axis"), ({"axis": -4}, "axis"), ({"axis": 0, "method": "aciq"}, "method"),
    ({"axis": 0, "grid": "affine"}, "grid"), ({"axis": 0, "range": "asymmetric", "grid": "affine"}, "range"),
])
def test_bad_per_channel_arguments_name_the_parameter(kwargs, name):
    w = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match=f"'{name}' parameter of optimal_clip"):
        optimal_clip(w, 4, **kwargs)


@pytest.mark.parametrize("x", [Laplace(), "gaussian"])
def test_a_prior_takes_no_axis(x):
    with pytest.raises(ValueError, match="'axis' parameter of optimal_clip"):
        optimal_clip(x, 4, axis=0)


def test_non_numeric_or_scalar_tensors_are_refused():
    with pytest.raises(TypeError, match="'axis' parameter"):
        optimal_clip(np.ones((2, 2)), 4, axis=0.5)
    with pytest.raises(TypeError, match="'prior' parameter"):
        optimal_clip([["a", "b"]], 4, axis=0)
    with pytest.raises(ValueError, match="'prior' parameter"):
        optimal_clip(np.float64(2.0), 4, axis=0)
    with pytest.raises(ValueError, match="non-finite"):
        optimal_clip([[1.0, np.nan]], 4, axis=0)
