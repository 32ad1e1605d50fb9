"""erf(x) = 2/sqrt(pi) * integral_0^x exp(-t**2) dt, for the exact GELU, on NumPy and CuPy.

NumPy has no erf (SciPy has, but NumPy is minigrad's only dependency), so the CPU computes it:

- float64: the rational approximations of FreeBSD/Sun's fdlibm `s_erf.c`, by region of |x|
  (below 1 ulp; gradcheck and the golden tests run here);
- float32 and float16: one formula for every x, Abramowitz & Stegun 7.1.26, computed in
  float32: |error| <= 1.5e-7 in exact arithmetic, <= 6e-7 with float32's rounding (a few
  float32 ulps; GELU comes out as close to the exact values as PyTorch's float32 GELU), and
  ten times faster than fdlibm's regions, which need masked gathers:
      erf(|x|) = 1 - t * (a1 + t*(a2 + t*(a3 + t*(a4 + t*a5)))) * exp(-x**2),  t = 1/(1 + p|x|)

The GPU path calls CuPy's erf kernel (cupyx.scipy.special.erf, CUDA's erf, full precision).

    |x| < 0.84375          erf = x + x * P(x**2) / Q(x**2)
    0.84375 <= |x| < 1.25  erf = erx + P(s) / Q(s),  s = |x| - 1,  erx = erf(1) rounded
    1.25 <= |x| < 6        erf = 1 - exp(-x**2 - 0.5625 + R(1/x**2) / S(1/x**2)) / |x|
                           (two coefficient sets, split at |x| = 1/0.35)
    |x| >= 6               erf = 1 (to double precision)
    and erf(-x) = -erf(x).
"""

from __future__ import annotations

import numpy as np

from ... import backend

# Coefficients of fdlibm's s_erf.c (Sun Microsystems, freely redistributable), lowest first.
_ERX = 8.45062911510467529297e-01
_PP = (
    1.28379167095512558561e-01,
    -3.25042107247001499370e-01,
    -2.84817495755985104766e-02,
    -5.77027029648944159157e-03,
    -2.37630166566501626084e-05,
)
_QQ = (
    1.0,
    3.97917223959155352819e-01,
    6.50222499887672944485e-02,
    5.08130628187576562776e-03,
    1.32494738004321644526e-04,
    -3.96022827877536812320e-06,
)
_PA = (
    -2.36211856075265944077e-03,
    4.14856118683748331666e-01,
    -3.72207876035701323847e-01,
    3.18346619901161753674e-01,
    -1.10894694282396677476e-01,
    3.54783043256182359371e-02,
    -2.16637559486879084300e-03,
)
_QA = (
    1.0,
    1.06420880400844228286e-01,
    5.40397917702171048937e-01,
    7.18286544141962662868e-02,
    1.26171219808761642112e-01,
    1.36370839120290507362e-02,
    1.19844998467991074170e-02,
)
_RA = (
    -9.86494403484714822705e-03,
    -6.93858572707181764372e-01,
    -1.05586262253232909814e01,
    -6.23753324503260060396e01,
    -1.62396669462573470355e02,
    -1.84605092906711035994e02,
    -8.12874355063065934246e01,
    -9.81432934416914548592e00,
)
_SA = (
    1.0,
    1.96512716674392571292e01,
    1.37657754143519042600e02,
    4.34565877475229228821e02,
    6.45387271733267880336e02,
    4.29008140027567833386e02,
    1.08635005541779435134e02,
    6.57024977031928170135e00,
    -6.04244152148580987438e-02,
)
_RB = (
    -9.86494292470009928597e-03,
    -7.99283237680523006574e-01,
    -1.77579549177547519889e01,
    -1.60636384855821916062e02,
    -6.37566443368389627722e02,
    -1.02509513161107724954e03,
    -4.83519191608651397019e02,
)
_SB = (
    1.0,
    3.03380607434824582924e01,
    3.25792512996573918826e02,
    1.53672958608443695994e03,
    3.19985821950859553908e03,
    2.55305040643316442583e03,
    4.74528541206955367215e02,
    -2.24409524465858183362e01,
)


def _poly(coefficients, z):
    """c0 + c1*z + c2*z**2 + ... by Horner's rule."""
    result = np.full_like(z, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        result *= z
        result += c
    return result


def _erf_numpy(x: np.ndarray) -> np.ndarray:
    a = np.abs(x.astype(np.float64))
    out = np.ones_like(a)  # |x| >= 6 (and inf)
    small = a < 0.84375
    z = a[small] ** 2
    out[small] = a[small] + a[small] * (_poly(_PP, z) / _poly(_QQ, z))
    mid = (a >= 0.84375) & (a < 1.25)
    s = a[mid] - 1.0
    out[mid] = _ERX + _poly(_PA, s) / _poly(_QA, s)
    for low, high, r, q in ((1.25, 1 / 0.35, _RA, _SA), (1 / 0.35, 6.0, _RB, _SB)):
        tail = (a >= low) & (a < high)
        at = a[tail]
        s = 1.0 / (at * at)
        out[tail] = 1.0 - np.exp(-at * at - 0.5625 + _poly(r, s) / _poly(q, s)) / at
    out[np.isnan(a)] = np.nan
    return np.copysign(out, x).astype(x.dtype, copy=False)


# Abramowitz & Stegun 7.1.26 (Handbook of Mathematical Functions, 1964), |error| <= 1.5e-7.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf_float32(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(erf(x), exp(-x**2)) in float32: the formula computes the second on the way."""
    x = x.astype(np.float32, copy=False)
    a = np.abs(x)
    t = a * np.float32(_AS_P)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * np.float32(_AS_A[-1])
    poly += np.float32(_AS_A[-2])
    for c in reversed(_AS_A[:-2]):
        poly *= t
        poly += np.float32(c)
    poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    gaussian = np.exp(a, out=a)  # exp(-x**2)
    poly *= gaussian
    np.subtract(1.0, poly, out=poly)
    return np.copysign(poly, x, out=poly), gaussian


def erf(x):
    """The error function of an array, elementwise, in the array's dtype (NumPy or CuPy)."""
    return erf_and_gaussian(x)[0]


def erf_and_gaussian(x):
    """(erf(x), exp(-x**2)), elementwise, in the array's dtype (NumPy or CuPy).

    GELU needs both: erf for its value, the Gaussian for its derivative. On the CPU in
    float32 the erf formula computes exp(-x**2) on the way, so the pair costs one exp.
    """
    if backend.device_of(x) == backend.GPU:
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x), backend.xp_of(x).exp(-x * x)
    if x.dtype == np.float64:
        return _erf_numpy(x), np.exp(-x * x)
    value, gaussian = _erf_float32(x)
    return value.astype(x.dtype, copy=False), gaussian.astype(x.dtype, copy=False)
