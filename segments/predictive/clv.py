"""Customer lifetime value, pure math: the BG/NBD model of how often customers buy and when they
quietly stop (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"), with its limit
for customers who all drop out with one probability, the Gamma-Gamma model of how much they spend
per order (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-Value Curves"; Fader & Hardie, note
025), their maximum-likelihood fits, and the predictions built on them.

Rule: arrays in, arrays out. No database, no Django, no Python loop over customers: every
function takes one-dimensional arrays with one row per customer (or, for the fits, per group of
identical customers with a weight) and works on whole arrays.

Notation of the papers: frequency x is the number of repeat purchases (purchases after the
first), recency t_x the time from the first to the last purchase (0 when x = 0), age T the time
from the first purchase to the end of observation. Time is in one unit of the caller's choosing
(days, weeks); alpha and the horizon are in that unit.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special
from threadpoolctl import threadpool_limits

FloatArray = NDArray[np.float64]
# Log-parameters -> (mean negative log-likelihood per customer, its gradient).
_Objective = Callable[[FloatArray], tuple[float, FloatArray]]

NOT_ONE_DIMENSIONAL = "{name} must be a one-dimensional array"
NOT_FINITE = "{name} has missing or infinite values"
NEGATIVE = "{name} has negative values"
LENGTH_MISMATCH = "{name} has {actual} rows where frequency has {expected}"
NO_CUSTOMERS = "no customers to fit: the arrays are empty or every weight is 0"
FREQUENCY_NOT_WHOLE = "frequency must be a whole number of repeat purchases"
RECENCY_AFTER_AGE = "recency is larger than age: a last purchase after the end of observation"
RECENCY_WITHOUT_REPEAT = "recency must be 0 where frequency is 0 (no repeat purchase)"
NO_OBSERVATION_TIME = "every customer has age 0: there is no time observed to fit on"
NO_REPEAT_PURCHASE = "no customer has a repeat purchase: the model cannot be fitted"
FREQUENCY_ZERO_IN_SPEND_FIT = (
    "gamma_gamma_fit takes only customers with frequency > 0: filter out the others first"
)
MONETARY_NOT_POSITIVE = "gamma_gamma_fit needs a positive monetary value for every customer"
PARAMETER_NOT_POSITIVE = "{name} must be a positive finite number, got {value!r}"
DROPOUT_PROBABILITY_INVALID = "p must be a number from 0 up to (not including) 1, got {value!r}"
BGNBD_JSON_KEYS = (
    "a stored BG/NBD model has the keys r, alpha, a, b or the keys r, alpha, p; got {keys}"
)
SPEND_MEAN_INFINITE = "the Gamma-Gamma model has q <= 1: its mean spend per order is infinite"
PERIODS_INVALID = "periods must be a positive whole number"
HORIZON_INVALID = "horizon must be a positive finite number"
DISCOUNT_RATE_INVALID = "discount_rate must be a finite number >= 0"
HYPERGEOMETRIC_NOT_CONVERGED = (
    "the hypergeometric series of the expected purchases did not converge"
)
FIT_NOT_CONVERGED = "the {model} fit did not converge: {reason}"
NON_FINITE_LIKELIHOOD = "the likelihood is not finite"
OPTIMISER_STOPPED = "the optimiser stopped short of the optimum ({message})"
NOT_IDENTIFIED = (
    "the likelihood keeps rising as {parameters} leave 1e-6..1e6 (time and money in the fit's "
    "units): the data show no spread that the model describes (every customer buying at one "
    "rate or spending one amount, say) or too few customers"
)

# The optimiser stops when no log-parameter moves the mean log-likelihood per customer by more
# than this per unit; at the CDNOW optimum that leaves the parameters correct to about 1e-6.
_GRADIENT_TOLERANCE = 1e-7
# A run that ends for another reason (L-BFGS-B's line search failing on rounding noise right at
# the optimum) is still accepted when the gradient there is this small.
_ACCEPTED_GRADIENT = 1e-5
_MAX_ITERATIONS = 1000
# Where scipy's hyp2f1 fails, its series is summed directly; see `_hyp2f1`.
_SERIES_MAX_TERMS = 100_000
# Parameters (with time and money in the fits' own units, so of order 1 in real data) are
# searched between 1e-8 and 1e8, and a fit ending outside 1e-6..1e6 is refused: the likelihood
# rose towards 0 or infinity, the sign of data that cannot identify the model (every customer
# buying at one rate or spending one amount, a single customer). BG/NBD's a and b are the
# exception where their running off is the limit model's maximum (see `bgnbd_fit`).
_LOG_SEARCH_LIMIT = float(np.log(1e8))
_LOG_IDENTIFIED_LIMIT = float(np.log(1e6))
# Within this distance of a = 1 the conditional expectation is a ratio of two vanishing terms,
# and is interpolated from values farther away (see `_purchases_if_active_hypergeometric`).
# The distance balances the interpolation error (order distance^4) against the digits lost in
# the ratio (order 1e-16 / distance): both stay below about 1e-8 relative.
_A_NEAR_ONE = 1e-3
# BG/NBD's limit model (every customer dropping out with one probability) is returned when its
# maximum log-likelihood is at least the general model's, less this much per customer: on the
# limit's ridge (a, b -> infinity) the general model stays a distance of order 1/(a+b) below
# it; an interior optimum was above it by 1e-7 to 1e-5 per customer in simulated data. Even
# for a million customers the allowance adds up to 1e-4 in the total log-likelihood, far below
# the 1.9 a likelihood-ratio test needs for significance at 5%.
_LIMIT_LIKELIHOOD_ALLOWANCE = 1e-10
# From this argument on, ln Γ(z+x) - ln Γ(z) and ψ(z+x) - ψ(z) are computed from Stirling's
# series (see `_log_rising`), whose terms kept here are then exact to 1e-15.
_STIRLING_FROM = 20.0
# With a and b+x both at least this large, the expected purchases of an active customer are
# computed by quadrature over the Beta distribution of the dropout probability, where the
# hypergeometric formula overflows (it does for a above about 100 and long horizons).
_QUADRATURE_MIN_SHAPE = 10.0


def _gauss_hermite(size: int) -> tuple[FloatArray, FloatArray]:
    """Gauss-Hermite nodes, and ln of each weight times exp(node^2): the weights that integrate
    against the normal density's own shape."""
    nodes, weights = special.roots_hermite(size)
    return nodes, np.log(weights) + nodes**2


# The number of nodes follows the spread of logit P (its standard deviation at the mode,
# sqrt(1/a + 1/(b+x))). Against 30-digit mpmath integrals, for r+x from 0.25 to 2000 and
# horizons from 1e-3 to 2000 times alpha + T: with spread up to 0.1 (a and b+x above about
# 100) 20 nodes were exact to 1e-15 relative; with (a, b+x) from (10, 10) to (10, 1e8),
# spread up to 0.45, 48 nodes to 5e-14.
_NARROW_SPREAD = 0.1
_NARROW_RULE = _gauss_hermite(20)
_WIDE_RULE = _gauss_hermite(48)


class FitError(ValueError):
    """A maximum-likelihood fit did not reach a finite optimum."""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class _PositiveParameters:
    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not (_is_number(value) and value > 0):
                raise ValueError(PARAMETER_NOT_POSITIVE.format(name=field.name, value=value))


@dataclass(frozen=True)
class BgNbd(_PositiveParameters):
    """BG/NBD: while active, a customer buys at rate lambda ~ Gamma(shape r, rate alpha), alpha in
    the caller's time unit; after each purchase the customer drops out with probability
    p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class BgNbdPointDropout:
    """The limit of BG/NBD as a and b grow with a/(a+b) -> p: the Beta distribution of the
    dropout probability narrows to the single value p, the same for every customer. Purchase
    rates are Gamma(r, alpha) as in BG/NBD. p = 0 is the NBD model: nobody drops out.

    Its formulas follow from BG/NBD's with B(a, b+x)/B(a, b) -> (1-p)^x and
    B(a+1, b+x-1)/B(a, b) -> p (1-p)^(x-1)."""

    r: float
    alpha: float
    p: float

    def __post_init__(self) -> None:
        for name in ("r", "alpha"):
            value = getattr(self, name)
            if not (_is_number(value) and value > 0):
                raise ValueError(PARAMETER_NOT_POSITIVE.format(name=name, value=value))
        if not (_is_number(self.p) and 0 <= self.p < 1):
            raise ValueError(DROPOUT_PROBABILITY_INVALID.format(value=self.p))


def bgnbd_from_json(data: Mapping[str, Any]) -> BgNbd | BgNbdPointDropout:
    """The model whose `vars()` were stored as `data`: a BgNbd or a BgNbdPointDropout, told
    apart by their keys. Whole numbers (a JSON round trip may turn 2.0 into 2) become floats."""
    values = {
        name: float(value) if isinstance(value, int) and not isinstance(value, bool) else value
        for name, value in data.items()
    }
    if values.keys() == {"r", "alpha", "a", "b"}:
        return BgNbd(**values)
    if values.keys() == {"r", "alpha", "p"}:
        return BgNbdPointDropout(**values)
    raise ValueError(BGNBD_JSON_KEYS.format(keys=", ".join(sorted(values))))


@dataclass(frozen=True)
class GammaGamma(_PositiveParameters):
    """Gamma-Gamma: a customer's order values are Gamma(shape p, rate nu), with
    nu ~ Gamma(shape q, rate gamma) across customers (gamma in the caller's currency unit)."""

    p: float
    q: float
    gamma: float


# --- input checks ------------------------------------------------------------------------------


def _column(values: ArrayLike, name: str) -> FloatArray:
    array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if array.ndim != 1:
        raise ValueError(NOT_ONE_DIMENSIONAL.format(name=name))
    if not np.isfinite(array).all():
        raise ValueError(NOT_FINITE.format(name=name))
    if (array < 0).any():
        raise ValueError(NEGATIVE.format(name=name))
    return array


def _same_length(expected: int, **columns: FloatArray) -> None:
    for name, column in columns.items():
        if column.size != expected:
            raise ValueError(
                LENGTH_MISMATCH.format(name=name, actual=column.size, expected=expected)
            )


def _frequency(frequency: ArrayLike) -> FloatArray:
    x = _column(frequency, "frequency")
    if (x != np.floor(x)).any():
        raise ValueError(FREQUENCY_NOT_WHOLE)
    return x


def _histories(
    frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = _frequency(frequency)
    t_x = _column(recency, "recency")
    T = _column(age, "age")
    _same_length(x.size, recency=t_x, age=T)
    if (t_x > T).any():
        raise ValueError(RECENCY_AFTER_AGE)
    if ((x == 0) & (t_x != 0)).any():
        raise ValueError(RECENCY_WITHOUT_REPEAT)
    return x, t_x, T


def _weights(weights: ArrayLike | None, size: int) -> FloatArray:
    if weights is None:
        return np.ones(size)
    w = _column(weights, "weights")
    _same_length(size, weights=w)
    return w


def _log_rising(z: float, x: FloatArray) -> FloatArray:
    """ln Γ(z+x) - ln Γ(z) for x >= 0. For large z the two terms are huge and nearly equal (at
    z = 1e8 their difference loses 8 digits, enough to steer a fit along a flat ridge), so
    there it is Stirling's formula subtracted term by term:
        (z - 1/2) ln(1 + x/z) + x ln(z+x) - x + μ(z+x) - μ(z),
    with μ the remainder 1/(12z) - 1/(360z^3) + ...: every piece is computed without loss."""
    if z < _STIRLING_FROM:
        return np.asarray(special.gammaln(z + x) - special.gammaln(z), dtype=np.float64)
    shifted = z + x
    return np.asarray(
        (z - 0.5) * np.log1p(x / z)
        + x * np.log(shifted)
        - x
        + _stirling_remainder(shifted)
        - _stirling_remainder(z),
        dtype=np.float64,
    )


def _stirling_remainder(z: float | FloatArray) -> FloatArray:
    """ln Γ(z) - [(z - 1/2) ln z - z + ln(2π)/2], for z >= 20 (next term below 1e-17)."""
    inverse_square = 1.0 / (np.asarray(z) * z)
    series = 1.0 / 1188 * inverse_square - 1.0 / 1680
    series = (series * inverse_square + 1.0 / 1260) * inverse_square - 1.0 / 360
    return np.asarray((series * inverse_square + 1.0 / 12) / z, dtype=np.float64)


def _digamma_difference(z: float, x: FloatArray) -> FloatArray:
    """ψ(z+x) - ψ(z) for x >= 0, for large z from the asymptotic series
    ψ(z) = ln z - 1/(2z) - 1/(12z^2) + 1/(120z^4) - 1/(252z^6) + 1/(240z^8) - ..., as
    `_log_rising`."""
    if z < _STIRLING_FROM:
        return np.asarray(special.digamma(z + x) - special.digamma(z), dtype=np.float64)
    return np.asarray(
        np.log1p(x / z) + _digamma_remainder(z + x) - _digamma_remainder(z), dtype=np.float64
    )


def _digamma_remainder(z: float | FloatArray) -> FloatArray:
    """ψ(z) - ln z, for z >= 20 (next term below 1e-15)."""
    inverse_square = 1.0 / (np.asarray(z) * z)
    series = 1.0 / 240 * inverse_square - 1.0 / 252
    series = (series * inverse_square + 1.0 / 120) * inverse_square - 1.0 / 12
    return np.asarray(series * inverse_square - 0.5 / z, dtype=np.float64)


def _grouped(values: FloatArray, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The distinct values and the total weight of each: a sum over customers of a function of
    one value then costs one evaluation per distinct value."""
    distinct, index = np.unique(values, return_inverse=True)
    totals = np.bincount(index, weights=weights, minlength=distinct.size)
    return distinct, np.asarray(totals, dtype=np.float64)


@dataclass(frozen=True)
class _Optimum:
    """Where L-BFGS-B stopped: the log-parameters, the objective there, the names of the
    parameters that ran out of the identified range, and whether it stopped at an optimum."""

    log_params: FloatArray
    negative_log_likelihood: float
    diverged: tuple[str, ...]
    converged: bool
    message: str

    def error(self, model: str) -> FitError:
        """Why the fit is refused: the parameters that ran off, else the optimiser's stop."""
        if self.diverged:
            reason = NOT_IDENTIFIED.format(parameters=", ".join(self.diverged))
        else:
            reason = OPTIMISER_STOPPED.format(message=self.message)
        return FitError(FIT_NOT_CONVERGED.format(model=model, reason=reason))


def _optimise(
    negative_log_likelihood: _Objective,
    names: tuple[str, ...],
    model: str,
    start: FloatArray | None = None,
) -> _Optimum:
    """Minimise a smooth objective (the mean negative log-likelihood per customer, with its
    gradient) over log-parameters (or logits) by L-BFGS-B: deterministic, and a few dozen
    evaluations. `start` defaults to every parameter 1."""
    if start is None:
        start = np.zeros(len(names))
    bounds = [(-_LOG_SEARCH_LIMIT, _LOG_SEARCH_LIMIT)] * len(names)
    # One BLAS thread: L-BFGS-B's linear algebra on a few parameters and the objectives' dot
    # products gain nothing from more, while OpenBLAS's threads, spinning for a core that other
    # work holds, made a 20,000-customer BG/NBD fit take 1-3 s instead of 0.03 s on a busy
    # 2-core machine; and sums split across threads would make the fitted values depend on the
    # machine's core count. (threadpoolctl comes with scikit-learn.)
    # Rounding to inf or 0 far from the optimum only steers the search; a failure shows below.
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(all="ignore"):
        result = optimize.minimize(
            negative_log_likelihood,
            np.clip(start, -_LOG_SEARCH_LIMIT, _LOG_SEARCH_LIMIT),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": _MAX_ITERATIONS, "gtol": _GRADIENT_TOLERANCE, "ftol": 1e-15},
        )
        log_params = np.asarray(result.x, dtype=np.float64)
        if not (np.isfinite(log_params).all() and np.isfinite(result.fun)):
            raise FitError(FIT_NOT_CONVERGED.format(model=model, reason=NON_FINITE_LIKELIHOOD))
        out_of_range = np.abs(log_params) > _LOG_IDENTIFIED_LIMIT
        converged = bool(result.success)
        if not converged:
            # L-BFGS-B's line search can fail on rounding noise right at the optimum.
            _, gradient = negative_log_likelihood(log_params)
            converged = bool(np.abs(gradient).max() <= _ACCEPTED_GRADIENT)
    return _Optimum(
        log_params=log_params,
        negative_log_likelihood=float(result.fun),
        diverged=tuple(name for name, out in zip(names, out_of_range, strict=True) if out),
        converged=converged,
        message=str(result.message),
    )


def _maximum_likelihood(
    negative_log_likelihood: _Objective, names: tuple[str, ...], model: str
) -> FloatArray:
    """The log-parameters at the optimum, or FitError when a parameter ran off (checked first:
    an optimiser stopped far out on a flat likelihood is explained by it) or the optimiser
    stopped short."""
    optimum = _optimise(negative_log_likelihood, names, model)
    if optimum.diverged or not optimum.converged:
        raise optimum.error(model)
    return optimum.log_params


# --- BG/NBD ------------------------------------------------------------------------------------


_BGNBD = "BG/NBD"


@dataclass(frozen=True)
class _Histories:
    """Customers' histories as the BG/NBD fits use them: time in units of the oldest customer's
    age, weights summing to 1, and the terms of a function of x alone (or, for customers with no
    repeat purchase, of the age alone) grouped over the distinct values."""

    time_unit: float
    distinct_x: FloatArray
    weight_of_x: FloatArray
    mean_x: float
    distinct_age_once: FloatArray
    weight_of_age_once: FloatArray
    x_repeat: FloatArray
    w_repeat: FloatArray
    age_repeat: FloatArray
    recency_repeat: FloatArray


def _fit_histories(
    frequency: ArrayLike, recency: ArrayLike, age: ArrayLike, weights: ArrayLike | None
) -> _Histories:
    x, t_x, T = _histories(frequency, recency, age)
    w = _weights(weights, x.size)
    counted = w > 0
    x, t_x, T, w = x[counted], t_x[counted], T[counted], w[counted]
    if x.size == 0:
        raise ValueError(NO_CUSTOMERS)
    if not (T > 0).any():
        raise ValueError(NO_OBSERVATION_TIME)
    if not (x > 0).any():
        raise ValueError(NO_REPEAT_PURCHASE)
    # While fitting, time is counted in units of the oldest customer's age: the optimiser then
    # starts from the same point (every parameter 1) and takes the same steps whatever unit the
    # caller uses, and only alpha is converted back.
    time_unit = float(T.max())
    w = w / w.sum()
    distinct_x, weight_of_x = _grouped(x, w)
    once = x == 0
    distinct_age_once, weight_of_age_once = _grouped(T[once] / time_unit, w[once])
    repeat = ~once
    return _Histories(
        time_unit=time_unit,
        distinct_x=distinct_x,
        weight_of_x=weight_of_x,
        mean_x=float(weight_of_x @ distinct_x),
        distinct_age_once=distinct_age_once,
        weight_of_age_once=weight_of_age_once,
        x_repeat=x[repeat],
        w_repeat=w[repeat],
        age_repeat=T[repeat] / time_unit,
        recency_repeat=t_x[repeat] / time_unit,
    )


def _purchase_terms(
    h: _Histories, r: float, alpha: float, base_odds: float | FloatArray
) -> tuple[float, float, float, FloatArray]:
    """The part of the mean log-likelihood per customer that BG/NBD and its limit share, its
    derivatives in r and alpha, and each repeat row's weight times its posterior probability
    of having dropped out.

    A customer's log-likelihood is
      ln Γ(r+x) - ln Γ(r) + r ln α + [dropout part of x alone]
      + ln[ (α+T)^-(r+x) + [x > 0] c (α+t_x)^-(r+x) ]
    with c = a/(b+x-1) for BG/NBD (paper's equation 6, in the log form of Hardie's note 004)
    and c = p/(1-p) for the limit; `base_odds` is ln c. The last term is
    -(r+x) ln(α+T) + softplus(d), with d = ln c + (r+x) ln((α+T)/(α+t_x)) and π = expit(d) the
    posterior probability that the customer has dropped out: finite for every x, however large,
    and 0 where ln c = -inf (nobody drops out)."""
    log_age = np.log(alpha + h.age_repeat)
    log_gap = log_age - np.log(alpha + h.recency_repeat)
    r_x = r + h.x_repeat
    dropout_odds = base_odds + r_x * log_gap
    w_dropped = h.w_repeat * special.expit(dropout_odds)
    w_r_x = h.w_repeat * r_x
    log_likelihood = (
        h.weight_of_x @ special.gammaln(r + h.distinct_x)
        - special.gammaln(r)
        + r * np.log(alpha)
        - r * (h.weight_of_age_once @ np.log(alpha + h.distinct_age_once))
        - w_r_x @ log_age
        + h.w_repeat @ np.logaddexp(0.0, dropout_odds)
    )
    d_r = (
        h.weight_of_x @ special.digamma(r + h.distinct_x)
        - special.digamma(r)
        + np.log(alpha)
        - h.weight_of_age_once @ np.log(alpha + h.distinct_age_once)
        - h.w_repeat @ log_age
        + w_dropped @ log_gap
    )
    inverse_age = 1.0 / (alpha + h.age_repeat)
    d_alpha = (
        r / alpha
        - r * (h.weight_of_age_once @ (1.0 / (alpha + h.distinct_age_once)))
        - w_r_x @ inverse_age
        + (w_dropped * r_x) @ (inverse_age - 1.0 / (alpha + h.recency_repeat))
    )
    return float(log_likelihood), float(d_r), float(d_alpha), w_dropped


def _bgnbd_objective(h: _Histories) -> _Objective:
    """BG/NBD's mean negative log-likelihood per customer in (ln r, ln α, ln a, ln b), with its
    gradient; α in the units of `h`."""

    def negative_log_likelihood(log_params: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(log_params)
        base_odds = np.log(a) - np.log(b + h.x_repeat - 1.0)
        log_likelihood, d_r, d_alpha, w_dropped = _purchase_terms(h, r, alpha, base_odds)
        # The dropout part of x alone, ln B(a, b+x) - ln B(a, b), as
        # [ln Γ(b+x) - ln Γ(b)] - [ln Γ(a+b+x) - ln Γ(a+b)]: with large a and b (customers who
        # drop out alike) betaln's own difference would lose the digits the fit steers by.
        log_likelihood += float(
            h.weight_of_x @ (_log_rising(b, h.distinct_x) - _log_rising(a + b, h.distinct_x))
        )
        # The weights sum to 1, so ψ(a+b) - Σ w ψ(a+b+x) = -Σ w [ψ(a+b+x) - ψ(a+b)].
        digamma_a_b_x = _digamma_difference(a + b, h.distinct_x)
        d_a = w_dropped.sum() / a - h.weight_of_x @ digamma_a_b_x
        d_b = h.weight_of_x @ (_digamma_difference(b, h.distinct_x) - digamma_a_b_x) - w_dropped @ (
            1.0 / (b + h.x_repeat - 1.0)
        )
        gradient = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return -log_likelihood, -gradient

    return negative_log_likelihood


def _point_dropout_objective(h: _Histories) -> _Objective:
    """The limit model's mean negative log-likelihood per customer in (ln r, ln α, logit p),
    with its gradient; logit p = -inf is the NBD model (p = 0)."""

    def negative_log_likelihood(params: FloatArray) -> tuple[float, FloatArray]:
        r, alpha = np.exp(params[:2])
        logit = float(params[2])
        log_likelihood, d_r, d_alpha, w_dropped = _purchase_terms(h, r, alpha, logit)
        # The dropout part of x alone: x ln(1-p) = -x softplus(logit p), exact for p near 1.
        log_likelihood -= h.mean_x * float(np.logaddexp(0.0, logit))
        d_logit = float(w_dropped.sum()) - h.mean_x * float(special.expit(logit))
        return -log_likelihood, -np.array([d_r * r, d_alpha * alpha, d_logit])

    return negative_log_likelihood


def _no_dropout_objective(h: _Histories) -> _Objective:
    """The NBD model's (p = 0) mean negative log-likelihood per customer in (ln r, ln α)."""
    point_dropout = _point_dropout_objective(h)

    def negative_log_likelihood(log_params: FloatArray) -> tuple[float, FloatArray]:
        value, gradient = point_dropout(np.append(log_params, -np.inf))
        return value, gradient[:2]

    return negative_log_likelihood


def _point_dropout_fit(
    h: _Histories, general_log_params: FloatArray
) -> tuple[BgNbdPointDropout, float] | None:
    """The limit model's maximum-likelihood fit and its mean negative log-likelihood, started
    where the general fit stopped (p = a/(a+b)); None when it has no finite optimum: r or alpha
    running off, or p running to 1 (as if every customer left at the first repeat purchase).
    p running to 0 is the NBD model, fitted with p = 0 exactly."""
    log_r, log_alpha, log_a, log_b = general_log_params
    start = np.array([log_r, log_alpha, log_a - log_b])
    try:
        limit = _optimise(_point_dropout_objective(h), ("r", "alpha", "p"), _BGNBD, start)
        logit = float(limit.log_params[2])
        if limit.diverged == ("p",) and logit < 0:
            logit = -np.inf
            limit = _optimise(
                _no_dropout_objective(h), ("r", "alpha"), _BGNBD, limit.log_params[:2]
            )
    except FitError:
        return None
    if limit.diverged or not limit.converged:
        return None
    r, alpha = np.exp(limit.log_params[:2])
    model = BgNbdPointDropout(
        r=float(r), alpha=float(alpha) * h.time_unit, p=float(special.expit(logit))
    )
    return model, limit.negative_log_likelihood


def bgnbd_fit(
    frequency: ArrayLike, recency: ArrayLike, age: ArrayLike, weights: ArrayLike | None = None
) -> BgNbd | BgNbdPointDropout:
    """The maximum-likelihood BG/NBD model of the customers' histories. `weights` counts the
    customers sharing each row, so grouped rows fit exactly as the customers they stand for.

    The likelihood's maximum may lie at the edge of BG/NBD's parameters, with a and b growing
    without bound at a fixed a/(a+b) = p: customers whose dropout probabilities do not differ.
    The limit model there, BgNbdPointDropout(r, alpha, p), is fitted too (started where the
    general fit stopped) and returned when its maximum is at least the general model's; with p
    running to 0 it is the NBD model, returned with p = 0. Any other parameter running off (r or
    alpha; a or b alone towards dropout probability 1) raises FitError, as does an optimiser
    stopped short of the optimum."""
    h = _fit_histories(frequency, recency, age, weights)
    general = _optimise(_bgnbd_objective(h), ("r", "alpha", "a", "b"), _BGNBD)
    if not set(general.diverged) <= {"a", "b"}:
        raise general.error(_BGNBD)
    # Fitted whether or not a and b ran off: the general fit can also stop on the limit's
    # ridge with a and b large but inside the search range, where the likelihood is flat.
    limit = _point_dropout_fit(h, general.log_params)
    if limit is not None and (
        limit[1] <= general.negative_log_likelihood + _LIMIT_LIKELIHOOD_ALLOWANCE
    ):
        return limit[0]
    if general.diverged or not general.converged:
        raise general.error(_BGNBD)
    r, alpha, a, b = np.exp(general.log_params)
    return BgNbd(r=float(r), alpha=float(alpha) * h.time_unit, a=float(a), b=float(b))


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p) if p > 0 else -math.inf


def _log_odds_dropped_out(
    model: BgNbd | BgNbdPointDropout, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """ln of the odds that a customer has dropped out: c ((α+T)/(α+t_x))^(r+x) with
    c = a/(b+x-1) (BG/NBD) or p/(1-p) (the limit; -inf for p = 0), and -inf where x = 0 (a
    customer is active until a repeat purchase gives a chance to drop out)."""
    has_repeat = x > 0
    safe_x = np.where(has_repeat, x, 1.0)
    if isinstance(model, BgNbdPointDropout):
        base_odds: float | FloatArray = _logit(model.p)
    else:
        base_odds = np.log(model.a) - np.log(model.b + safe_x - 1.0)
    log_odds = base_odds + (model.r + safe_x) * np.log1p((T - t_x) / (model.alpha + t_x))
    return np.where(has_repeat, log_odds, -np.inf)


def bgnbd_probability_alive(
    model: BgNbd | BgNbdPointDropout, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> FloatArray:
    """P(active | x, t_x, T), Hardie's note 021: 1 / (1 + a/(b+x-1) ((α+T)/(α+t_x))^(r+x)), in
    the limit model 1 / (1 + p/(1-p) ((α+T)/(α+t_x))^(r+x)), and 1 for customers with no repeat
    purchase."""
    x, t_x, T = _histories(frequency, recency, age)
    return special.expit(-_log_odds_dropped_out(model, x, t_x, T))


def _ratio_or_one(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """numerator / denominator, and 1 where the denominator is 0 (for the ratios below, which
    tend to 1 as both vanish)."""
    return np.divide(
        numerator, denominator, out=np.ones(np.shape(numerator)), where=denominator != 0
    )


def _purchases_at_dropout(
    p: float | FloatArray, r_x: FloatArray, relative_horizon: FloatArray
) -> FloatArray:
    """The expected purchases in the next t of an active customer who drops out with probability
    p after each purchase and whose purchase rate is Gamma(r+x, α+T), u = t/(α+T) being
    `relative_horizon`: (1/p) [1 - (1 + p u)^-(r+x)], and (r+x) u at p = 0. Written as
    (r+x) u g(p u) h((r+x) ln(1 + p u)), with g(z) = ln(1+z)/z and h(y) = (1 - e^-y)/y (both 1
    at 0), it has no 1/p to lose digits or divide by 0, for any p, x and t."""
    z = p * relative_horizon
    log_growth = np.log1p(z)
    y = r_x * log_growth
    return np.asarray(
        r_x * relative_horizon * _ratio_or_one(log_growth, z) * _ratio_or_one(-np.expm1(-y), y),
        dtype=np.float64,
    )


def _purchases_if_active(
    model: BgNbd | BgNbdPointDropout, horizon: FloatArray, x: FloatArray, T: FloatArray
) -> FloatArray:
    """The expected purchases in the next `horizon` of a customer known to be active. In the
    limit model, E[Y(t) | x, t_x, T] / P(active) = (1/p) [1 - ((α+T)/(α+T+p t))^(r+x)], the
    limit of BG/NBD's as a/(a+b) -> p. For BG/NBD it is the same expression averaged over the
    active customer's dropout probability p ~ Beta(a, b+x): by quadrature where a and b+x are
    both large (the distribution narrow, the hypergeometric formula overflowing), else by that
    formula."""
    if isinstance(model, BgNbdPointDropout):
        return _purchases_at_dropout(model.p, model.r + x, horizon / (model.alpha + T))
    if model.a < _QUADRATURE_MIN_SHAPE:
        return _purchases_if_active_hypergeometric(model, horizon, x, T)
    horizon, x, T = np.broadcast_arrays(horizon, x, T)
    by_quadrature = model.b + x >= _QUADRATURE_MIN_SHAPE
    purchases = np.empty(x.shape)
    for rows, method in (
        (by_quadrature, _purchases_if_active_by_quadrature),
        (~by_quadrature, _purchases_if_active_hypergeometric),
    ):
        if rows.any():
            purchases[rows] = method(model, horizon[rows], x[rows], T[rows])
    return purchases


def _purchases_if_active_by_quadrature(
    model: BgNbd, horizon: FloatArray, x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[(1/P) (1 - (1 + P u)^-(r+x))] over P ~ Beta(a, b+x), u = t/(α+T), by Gauss-Hermite
    quadrature in y = logit P. The density of y, proportional to exp(a y - (a+b+x) ln(1+e^y)),
    is log-concave with mode ln(a/(b+x)) and curvature a(b+x)/(a+b+x) there: the nodes are
    placed and scaled by those, and the weights (the density over the normal one at each node)
    are divided by their sum, so the Beta function's normalisation cancels instead of costing
    digits. Nodes and weights depend on x alone and are computed once per distinct x."""
    distinct_x, index = np.unique(x, return_inverse=True)
    a, beta = model.a, model.b + distinct_x
    spread = np.sqrt((a + beta) / (a * beta))
    nodes, log_node_weights = _NARROW_RULE if spread.max() <= _NARROW_SPREAD else _WIDE_RULE
    mode = np.log(a) - np.log(beta)
    logit = mode[:, np.newaxis] + np.sqrt(2.0) * spread[:, np.newaxis] * nodes
    log_weights = (
        log_node_weights
        + a * (logit - mode[:, np.newaxis])
        - (a + beta)[:, np.newaxis]
        * (np.logaddexp(0.0, logit) - np.logaddexp(0.0, mode)[:, np.newaxis])
    )
    weights = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    dropout = special.expit(logit)
    # One row per node, contiguous for np.take.
    dropout_by_node = np.ascontiguousarray(dropout.T)
    weight_over_dropout_by_node = np.ascontiguousarray((weights / dropout).T)
    minus_r_x = -(model.r + x)
    relative_horizon = horizon / (model.alpha + T)
    # One node at a time over all customers, in place: memory stays two columns per customer.
    # At a node p > 0, and (1/p) [1 - (1 + p u)^-(r+x)] = -expm1(-(r+x) log1p(p u)) / p loses
    # no digits.
    purchases = np.zeros(x.shape)
    term = np.empty(x.shape)
    for node in range(nodes.size):
        np.take(dropout_by_node[node], index, out=term)
        term *= relative_horizon
        np.log1p(term, out=term)
        term *= minus_r_x
        np.expm1(term, out=term)
        term *= np.take(weight_over_dropout_by_node[node], index)
        purchases -= term
    return purchases


def _purchases_if_active_hypergeometric(
    model: BgNbd, horizon: FloatArray, x: FloatArray, T: FloatArray
) -> FloatArray:
    """The numerator of the paper's equation 10,
        (a+b+x-1)/(a-1) [1 - ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)],  z = t/(α+T+t).
    That 2F1 grows like (1-z)^(a-1-r-x) and overflows for large x and t (lifetimes then retries
    with the transformation below). Euler's transformation,
        2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z),
    turns the bracket into 1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose 2F1 has
    numerator parameters that do not grow with x and a denominator parameter that does: it
    tends to 1 as x grows and never overflows. (It does grow with a, like (1-z)^(r+x+1-a):
    hence the quadrature for large a.)"""
    offset = model.a - 1.0
    if abs(offset) < _A_NEAR_ONE:
        # Near a = 1 the two factors are a ratio of vanishing terms and lose digits: the value
        # is interpolated (Lagrange, error of order h^4) from a = 1 - 2h, 1 - h, 1 + h, 1 + 2h.
        nodes = _A_NEAR_ONE * np.array([-2.0, -1.0, 1.0, 2.0])
        interpolated = np.zeros(np.broadcast(horizon, x, T).shape)
        for j, node in enumerate(nodes):
            others = np.delete(nodes, j)
            weight = float(np.prod((offset - others) / (node - others)))
            interpolated += weight * _purchases_if_active_at(1.0 + node, model, horizon, x, T)
        return interpolated
    return _purchases_if_active_at(model.a, model, horizon, x, T)


def _purchases_if_active_at(
    a: float, model: BgNbd, horizon: FloatArray, x: FloatArray, T: FloatArray
) -> FloatArray:
    b, r = model.b, model.r
    ratio = horizon / (model.alpha + T)
    log_remaining = -np.log1p(ratio)  # ln(1-z) = ln((α+T)/(α+T+t))
    z = ratio / (1.0 + ratio)
    series = _hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
    # 1 - (1-z)^(a-1) F, without losing the digits of a small result.
    power = (a - 1.0) * log_remaining
    bracket = -np.expm1(power) - np.exp(power) * (series - 1.0)
    return np.asarray((a + b + x - 1.0) / (a - 1.0) * bracket, dtype=np.float64)


def bgnbd_expected_purchases(
    model: BgNbd | BgNbdPointDropout,
    horizon: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: the expected number of purchases of each customer in the next
    `horizon` (a scalar, or one per customer), the paper's equation 10: the purchases expected
    if active times P(active). In the limit model, P(active) (1/p) [1 - ((α+T)/(α+T+p t))^(r+x)],
    and P(active) (r+x) t/(α+T) at p = 0 (the NBD model, where P(active) = 1)."""
    x, t_x, T = _histories(frequency, recency, age)
    t = _column(horizon, "horizon")
    if t.size != 1:
        _same_length(x.size, horizon=t)
    alive = special.expit(-_log_odds_dropped_out(model, x, t_x, T))
    return np.asarray(_purchases_if_active(model, t, x, T) * alive, dtype=np.float64)


def _hyp2f1(A: float, B: float, C: FloatArray, z: FloatArray) -> FloatArray:
    """2F1(A, B; C; z) for 0 <= z < 1. scipy's hyp2f1 returns nan or inf for some large C with
    z near 1 (scipy 1.17: C >= 100 and z >= 0.95, e.g. 2F1(-1.5, -0.5; 300; 0.95)); where it
    fails, the power series is summed instead, term by term over those rows only. With C that
    large each term is about n z / C times the one before, so a few dozen terms suffice."""
    C, z = np.broadcast_arrays(np.asarray(C, dtype=np.float64), np.asarray(z, dtype=np.float64))
    values = np.array(special.hyp2f1(A, B, C, z), dtype=np.float64)
    failed = ~np.isfinite(values)
    if failed.any():
        values[failed] = _hyp2f1_series(A, B, C[failed], z[failed])
    return values


def _hyp2f1_series(A: float, B: float, C: FloatArray, z: FloatArray) -> FloatArray:
    """The power series of 2F1(A, B; C; z), for C above A and B (here C - A = r + x and
    C - B = b + x) and 0 <= z < 1."""
    total = np.ones_like(C)
    term = np.ones_like(C)
    for n in range(_SERIES_MAX_TERMS):
        term *= (A + n) * (B + n) / ((n + 1.0) * (C + n)) * z
        total += term
        # `term` is now the series' term n + 1. Once A + n + 1 and B + n + 1 are positive, each
        # later ratio of terms, (A+m)(B+m) z / ((m+1)(C+m)) for m > n, is at most
        # z max(1, (B+n+1)/(n+2)) (as (A+m)/(C+m) < 1), and likewise with A and B swapped:
        # the rest of the series is bounded by a geometric series of that ratio.
        if n + 1 + min(A, B) > 0:
            factor = min(max(1.0, (A + n + 1) / (n + 2)), max(1.0, (B + n + 1) / (n + 2)))
            bound = z * factor
            tail_negligible = np.abs(term) * bound <= 1e-17 * np.abs(total) * (1.0 - bound)
            if ((bound < 1.0) & tail_negligible).all():
                return total
    raise FloatingPointError(HYPERGEOMETRIC_NOT_CONVERGED)


# --- Gamma-Gamma -------------------------------------------------------------------------------


def _spend_histories(frequency: ArrayLike, monetary: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = _frequency(frequency)
    m = _column(monetary, "monetary")
    _same_length(x.size, monetary=m)
    return x, m


def gamma_gamma_fit(
    frequency: ArrayLike, monetary: ArrayLike, weights: ArrayLike | None = None
) -> GammaGamma:
    """The maximum-likelihood Gamma-Gamma parameters (Fader & Hardie, note 025, equation 1a) of
    customers with at least one repeat purchase: `frequency` their repeat purchases, `monetary`
    the mean value of those repeat purchases; `weights` as in `bgnbd_fit`."""
    x, m = _spend_histories(frequency, monetary)
    w = _weights(weights, x.size)
    if (x == 0).any():
        raise ValueError(FREQUENCY_ZERO_IN_SPEND_FIT)
    if (m == 0).any():
        raise ValueError(MONETARY_NOT_POSITIVE)
    counted = w > 0
    x, m, w = x[counted], m[counted], w[counted]
    if x.size == 0:
        raise ValueError(NO_CUSTOMERS)
    w = w / w.sum()
    # While fitting, money is counted in units of the mean order value, for the reason time is
    # rescaled in `bgnbd_fit`; only gamma carries the unit.
    money_unit = float(w @ m)
    m = m / money_unit
    distinct_x, weight_of_x = _grouped(x, w)
    w_x = w * x
    # The terms of ln m and ln x do not depend on the parameters but for a factor p.
    log_m_x = np.log(m) + np.log(x)
    p_slope = float(w_x @ log_m_x)
    constant = -float(w @ np.log(m))  # (px-1) ln m + px ln x = p x (ln m + ln x) - ln m
    spend = m * x

    def negative_log_likelihood(log_params: FloatArray) -> tuple[float, FloatArray]:
        p, q, gamma = np.exp(log_params)
        # A customer's log-likelihood is
        #   ln Γ(px+q) - ln Γ(px) - ln Γ(q) + q ln γ + (px-1) ln m + px ln x - (px+q) ln(γ+mx).
        log_total = np.log(gamma + spend)
        shape_x = p * distinct_x
        log_likelihood = (
            weight_of_x @ (special.gammaln(shape_x + q) - special.gammaln(shape_x))
            - special.gammaln(q)
            + q * np.log(gamma)
            + p * p_slope
            + constant
            - p * (w_x @ log_total)
            - q * (w @ log_total)
        )
        digamma_shape_q = special.digamma(shape_x + q)
        d_p = (
            (weight_of_x * distinct_x) @ (digamma_shape_q - special.digamma(shape_x))
            + p_slope
            - w_x @ log_total
        )
        d_q = weight_of_x @ digamma_shape_q - special.digamma(q) + np.log(gamma) - w @ log_total
        d_gamma = q / gamma - (p * w_x + q * w) @ (1.0 / (gamma + spend))
        gradient = np.array([d_p * p, d_q * q, d_gamma * gamma])
        return -float(log_likelihood), -gradient

    p, q, gamma = np.exp(
        _maximum_likelihood(negative_log_likelihood, ("p", "q", "gamma"), "Gamma-Gamma")
    )
    return GammaGamma(p=float(p), q=float(q), gamma=float(gamma) * money_unit)


def gamma_gamma_expected_spend(
    model: GammaGamma, frequency: ArrayLike, monetary: ArrayLike
) -> FloatArray:
    """E[order value | x, m] (note 025, equation 5): the customer's mean repeat order value m and
    the population mean pγ/(q-1), weighted px : q-1. With no repeat purchase (x = 0) it is the
    population mean, whatever `monetary` holds; a mean of 0 (repeat orders all refunded, say)
    is shrunk towards it like any other."""
    if model.q <= 1:
        raise ValueError(SPEND_MEAN_INFINITE)
    x, m = _spend_histories(frequency, monetary)
    p, q, gamma = model.p, model.q, model.gamma
    return np.asarray((p * gamma + p * x * m) / (p * x + q - 1.0), dtype=np.float64)


# --- lifetime value ----------------------------------------------------------------------------


def lifetime_value(
    bgnbd: BgNbd | BgNbdPointDropout,
    gamma_gamma: GammaGamma,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    monetary: ArrayLike,
    *,
    horizon: float,
    periods: int,
    discount_rate: float = 0.0,
) -> FloatArray:
    """Each customer's expected spend over the next `horizon`, cut into `periods` equal steps
    (12 for a year in months): a step's expected purchases (the difference of the cumulative
    expectations at its two ends) times the expected order value, discounted by
    (1 + discount_rate)^step. `discount_rate` is per step; 0 means no discounting."""
    if isinstance(periods, bool) or not isinstance(periods, int | np.integer) or periods < 1:
        raise ValueError(PERIODS_INVALID)
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(HORIZON_INVALID)
    if not (np.isfinite(discount_rate) and discount_rate >= 0):
        raise ValueError(DISCOUNT_RATE_INVALID)
    x, t_x, T = _histories(frequency, recency, age)
    spend = gamma_gamma_expected_spend(gamma_gamma, x, monetary)
    alive = special.expit(-_log_odds_dropped_out(bgnbd, x, t_x, T))
    # Summed as purchases if active, step by step; P(active) and the spend multiply once.
    # The loop runs over the steps (a dozen), each over all customers at once.
    discounted_purchases = np.zeros_like(x)
    cumulative_before = np.zeros_like(x)
    for step in range(1, int(periods) + 1):
        cumulative = _purchases_if_active(bgnbd, np.asarray(horizon * step / periods), x, T)
        discounted_purchases += (cumulative - cumulative_before) / (1.0 + discount_rate) ** step
        cumulative_before = cumulative
    return np.asarray(discounted_purchases * alive * spend, dtype=np.float64)
