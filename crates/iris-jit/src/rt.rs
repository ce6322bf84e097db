//! Python's numeric semantics, written once: the interpreter calls the safe functions directly,
//! generated code calls the `extern "C"` shims, which report errors through a status pointer.

use crate::error::status;

type R<T> = Result<T, u32>;

/// `2**53`: integers up to this magnitude convert to `f64` exactly.
const EXACT_INT: i64 = 1 << 53;

fn is_odd_integer(x: f64) -> bool {
    // CPython's DOUBLE_IS_ODD_INTEGER: fmod(fabs(x), 2.0) == 1.0
    (x.abs() % 2.0) == 1.0
}

/// `x ** 0.5` as glibc's `pow(x, 0.5)` returns it, without calling `pow` when the answer is
/// certain: glibc's `pow` (2.28 and later) states a worst-case error of about 0.52 ULP, so
/// whenever the exact square root lies within 0.4 ULP of the correctly rounded `sqrt(x)`,
/// every other double is more than 0.6 ULP away and `pow` must return `sqrt(x)` too (400M
/// random inputs agreed bit for bit). The
/// distance comes from the exact residual `s*s - x` (one fused multiply-add). Elsewhere
/// (near a rounding midpoint, extreme or special inputs, no FMA) `None`: call `pow`.
#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
fn sqrt_where_pow_agrees(x: f64) -> Option<f64> {
    #[target_feature(enable = "fma")]
    fn residual(s: f64, x: f64) -> f64 {
        use std::arch::x86_64::{_mm_cvtsd_f64, _mm_fmsub_sd, _mm_set_sd};
        let (a, b) = (_mm_set_sd(s), _mm_set_sd(x));
        _mm_cvtsd_f64(_mm_fmsub_sd(a, a, b))
    }
    if !(1e-300..=1e300).contains(&x) || !std::arch::is_x86_feature_detected!("fma") {
        return None;
    }
    let s = x.sqrt();
    // a power of two has a smaller ULP below it; rare, so leave it to `pow`
    if s.to_bits() & ((1 << 52) - 1) == 0 {
        return None;
    }
    // SAFETY: the CPU supports FMA (checked above)
    let r = unsafe { residual(s, x) };
    let ulp = f64::from_bits(s.to_bits() + 1) - s;
    // |sqrt(x) - s| = |r| / (sqrt(x) + s), within a hair of |r| / 2s
    (r.abs() / (2.0 * s * ulp) <= 0.4).then_some(s)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64")))]
fn sqrt_where_pow_agrees(_x: f64) -> Option<f64> {
    None
}

/// Whether generated code may inline the test of [`sqrt_where_pow_agrees`] (same platform, an
/// FMA unit that Cranelift's host ISA uses too).
pub(crate) fn pow_half_shortcut() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64")))]
    {
        false
    }
}

/// `float ** float`, CPython's `float_pow`.
pub(crate) fn f_pow(iv: f64, iw: f64) -> R<f64> {
    if iw == 0.5
        && let Some(s) = sqrt_where_pow_agrees(iv)
    {
        return Ok(s);
    }
    if iw == 0.0 {
        return Ok(1.0);
    }
    if iv.is_nan() {
        return Ok(iv);
    }
    if iw.is_nan() {
        return Ok(if iv == 1.0 { 1.0 } else { iw });
    }
    if iw.is_infinite() {
        let a = iv.abs();
        return Ok(if a == 1.0 {
            1.0
        } else if (iw > 0.0) == (a > 1.0) {
            iw.abs()
        } else {
            0.0
        });
    }
    if iv.is_infinite() {
        let odd = is_odd_integer(iw);
        return Ok(if iw > 0.0 {
            if odd { iv } else { iv.abs() }
        } else if odd {
            0.0f64.copysign(iv)
        } else {
            0.0
        });
    }
    if iv == 0.0 {
        let odd = is_odd_integer(iw);
        if iw < 0.0 {
            return Err(status::ZERO_DIV);
        }
        return Ok(if odd { iv } else { 0.0 });
    }
    let mut base = iv;
    let mut negate = false;
    if iv < 0.0 {
        if iw != iw.floor() {
            // Python returns a complex number
            return Err(status::DOMAIN);
        }
        base = -iv;
        negate = is_odd_integer(iw);
    }
    if base == 1.0 {
        return Ok(if negate { -1.0 } else { 1.0 });
    }
    let ix = base.powf(iw);
    if ix.is_infinite() {
        return Err(status::FLOAT_OVERFLOW);
    }
    Ok(if negate { -ix } else { ix })
}

/// `x ** 0.5` without calling `pow`: identical to [`f_pow`] with exponent 0.5 except that
/// finite positive inputs use the correctly rounded `sqrt` (see the optimizer's notes).
pub(crate) fn f_pow_half(x: f64) -> R<f64> {
    if x == 0.0 {
        return Ok(0.0);
    }
    if x == f64::NEG_INFINITY {
        return Ok(f64::INFINITY);
    }
    if x < 0.0 {
        return Err(status::DOMAIN);
    }
    Ok(x.sqrt())
}

/// `x ** 2.0` as `x * x` (fastmath: libm's `pow` may round differently), with CPython's
/// special cases and overflow error.
pub(crate) fn f_square(x: f64) -> R<f64> {
    let r = x * x;
    if r.is_infinite() && x.is_finite() {
        return Err(status::FLOAT_OVERFLOW);
    }
    Ok(r)
}

/// `x ** -1.0` as `1.0 / x` (fastmath), with CPython's zero-division and overflow errors.
pub(crate) fn f_recip(x: f64) -> R<f64> {
    if x == 0.0 {
        return Err(status::ZERO_DIV);
    }
    let r = 1.0 / x;
    if r.is_infinite() && x.is_finite() {
        return Err(status::FLOAT_OVERFLOW);
    }
    Ok(r)
}

/// Closed forms of `sum(body for j in range(a, b))` (step 1) for the bodies the optimizer
/// recognizes, with exactly the loop's overflow behaviour: the loop fails iff some partial sum
/// (or `j * j`) leaves `i64`, and every partial sum lies between the sum of the negative terms
/// and the final sum, since terms are summed in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RangeSum {
    /// a constant integer body
    Const(i64),
    /// `j`
    Linear,
    /// `j * j`
    Square,
}

fn fits(v: i128) -> R<i64> {
    i64::try_from(v).map_err(|_| status::INT_OVERFLOW)
}

/// Sum of the integers `lo..=hi` (lo <= hi), or `None` beyond i128.
fn series(lo: i128, hi: i128) -> Option<i128> {
    (hi - lo + 1).checked_mul(lo + hi).map(|p| p / 2)
}

/// Sum of squares `1..=n`.
fn squares(n: i128) -> i128 {
    n * (n + 1) * (2 * n + 1) / 6
}

pub(crate) fn range_sum(kind: RangeSum, a: i64, b: i64) -> R<i64> {
    if b <= a {
        return Ok(0);
    }
    let (a, b) = (i128::from(a), i128::from(b));
    let n = b - a;
    match kind {
        RangeSum::Const(c) => fits(i128::from(c) * n),
        RangeSum::Linear => {
            let neg = if a < 0 {
                let v = series(a, b.min(0) - 1).ok_or(status::INT_OVERFLOW)?;
                fits(v)?;
                v
            } else {
                0
            };
            let pos = if b > 0 {
                series(a.max(0), b - 1).ok_or(status::INT_OVERFLOW)?
            } else {
                0
            };
            fits(neg + pos)
        }
        RangeSum::Square => {
            const ROOT: i128 = 3_037_000_499; // largest j with j * j in i64
            if a.abs() > ROOT || (b - 1).abs() > ROOT {
                return Err(status::INT_OVERFLOW);
            }
            let neg = if a < 0 {
                let hi = -a;
                let lo = -(b.min(0) - 1);
                squares(hi) - squares(lo - 1)
            } else {
                0
            };
            let pos = if b > 0 {
                let lo = a.max(0);
                squares(b - 1) - if lo > 0 { squares(lo - 1) } else { 0 }
            } else {
                0
            };
            fits(neg + pos)
        }
    }
}

/// `math.pow`: like `**` on floats but every error is a `ValueError`/`OverflowError`.
pub(crate) fn m_pow(x: f64, y: f64) -> R<f64> {
    match f_pow(x, y) {
        Err(status::ZERO_DIV) => Err(status::DOMAIN),
        other => other,
    }
}

/// CPython's `float_divmod` core: returns (floordiv, mod).
fn f_divmod(vx: f64, wx: f64) -> R<(f64, f64)> {
    if wx == 0.0 {
        return Err(status::ZERO_DIV);
    }
    let mut m = vx % wx;
    let mut div = (vx - m) / wx;
    if m != 0.0 {
        if (wx < 0.0) != (m < 0.0) {
            m += wx;
            div -= 1.0;
        }
    } else {
        m = 0.0f64.copysign(wx);
    }
    let floordiv = if div != 0.0 {
        let mut fd = div.floor();
        if div - fd > 0.5 {
            fd += 1.0;
        }
        fd
    } else {
        0.0f64.copysign(vx / wx)
    };
    Ok((floordiv, m))
}

/// `float // float`.
pub(crate) fn f_floordiv(a: f64, b: f64) -> R<f64> {
    f_divmod(a, b).map(|r| r.0)
}

/// `float % float` (CPython's `float_rem`).
pub(crate) fn f_mod(vx: f64, wx: f64) -> R<f64> {
    if wx == 0.0 {
        return Err(status::ZERO_DIV);
    }
    let mut m = vx % wx;
    if m != 0.0 {
        if (wx < 0.0) != (m < 0.0) {
            m += wx;
        }
    } else {
        m = 0.0f64.copysign(wx);
    }
    Ok(m)
}

/// `float / float`.
pub(crate) fn f_div(a: f64, b: f64) -> R<f64> {
    if b == 0.0 {
        Err(status::ZERO_DIV)
    } else {
        Ok(a / b)
    }
}

pub(crate) fn i_add(a: i64, b: i64) -> R<i64> {
    a.checked_add(b).ok_or(status::INT_OVERFLOW)
}

pub(crate) fn i_sub(a: i64, b: i64) -> R<i64> {
    a.checked_sub(b).ok_or(status::INT_OVERFLOW)
}

pub(crate) fn i_mul(a: i64, b: i64) -> R<i64> {
    a.checked_mul(b).ok_or(status::INT_OVERFLOW)
}

pub(crate) fn i_neg(a: i64) -> R<i64> {
    a.checked_neg().ok_or(status::INT_OVERFLOW)
}

pub(crate) fn i_abs(a: i64) -> R<i64> {
    a.checked_abs().ok_or(status::INT_OVERFLOW)
}

/// `int // int` (floor).
pub(crate) fn i_floordiv(a: i64, b: i64) -> R<i64> {
    if b == 0 {
        return Err(status::ZERO_DIV);
    }
    let q = a.checked_div(b).ok_or(status::INT_OVERFLOW)?;
    Ok(if (a % b != 0) && ((a < 0) != (b < 0)) {
        q - 1
    } else {
        q
    })
}

/// `int % int` (sign of the divisor).
pub(crate) fn i_mod(a: i64, b: i64) -> R<i64> {
    if b == 0 {
        return Err(status::ZERO_DIV);
    }
    let r = a.wrapping_rem(b);
    Ok(if r != 0 && ((r < 0) != (b < 0)) {
        r + b
    } else {
        r
    })
}

/// `int / int`: correctly rounded; exact only when both fit in 53 bits.
pub(crate) fn i_truediv(a: i64, b: i64) -> R<f64> {
    if b == 0 {
        return Err(status::ZERO_DIV);
    }
    if a.unsigned_abs() > EXACT_INT as u64 || b.unsigned_abs() > EXACT_INT as u64 {
        return Err(status::INEXACT);
    }
    Ok(a as f64 / b as f64)
}

/// `int ** int` for a non-negative exponent (a negative one gives a float in Python, whose type
/// the static IR cannot follow; that is a fallback).
pub(crate) fn i_pow(a: i64, b: i64) -> R<i64> {
    if b < 0 {
        return Err(status::INEXACT);
    }
    if b > u32::MAX as i64 {
        return match a {
            0 | 1 => Ok(a),
            -1 => Ok(if b % 2 == 0 { 1 } else { -1 }),
            _ => Err(status::INT_OVERFLOW),
        };
    }
    a.checked_pow(b as u32).ok_or(status::INT_OVERFLOW)
}

/// An int promoted to float where Python would have kept the int: only when exact.
pub(crate) fn i_to_f_exact(a: i64) -> R<f64> {
    if a.unsigned_abs() > EXACT_INT as u64 {
        Err(status::INEXACT)
    } else {
        Ok(a as f64)
    }
}

/// `int(float)`: truncation.
pub(crate) fn f_to_int(x: f64) -> R<i64> {
    if x.is_nan() {
        return Err(status::DOMAIN);
    }
    if x.is_infinite() {
        return Err(status::FLOAT_OVERFLOW);
    }
    let t = x.trunc();
    // -2**63 <= t < 2**63
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&t) {
        Ok(t as i64)
    } else {
        Err(status::INT_OVERFLOW)
    }
}

/// `round(float)`: banker's rounding to an int.
pub(crate) fn f_round(x: f64) -> R<i64> {
    if x.is_nan() {
        return Err(status::DOMAIN);
    }
    if x.is_infinite() {
        return Err(status::FLOAT_OVERFLOW);
    }
    f_to_int(x.round_ties_even())
}

/// Exact comparison of an int with a float: -1, 0, 1, or 2 when unordered (NaN).
pub(crate) fn cmp_if(i: i64, f: f64) -> i32 {
    if f.is_nan() {
        return 2;
    }
    let fi = i as f64;
    if fi < f {
        return -1;
    }
    if fi > f {
        return 1;
    }
    // fi == f: f is integral with |f| <= 2**63
    if f >= 9_223_372_036_854_775_808.0 {
        return -1;
    }
    let g = f as i64;
    (i > g) as i32 - (i < g) as i32
}

/// The math functions reachable from expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MathFn {
    Sin,
    Cos,
    Tan,
    Sinh,
    Cosh,
    Tanh,
    Exp,
    Log,
    Sqrt,
}

impl MathFn {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name.strip_prefix("math.").unwrap_or(name) {
            "sin" => Self::Sin,
            "cos" => Self::Cos,
            "tan" => Self::Tan,
            "sinh" => Self::Sinh,
            "cosh" => Self::Cosh,
            "tanh" => Self::Tanh,
            "exp" => Self::Exp,
            "log" => Self::Log,
            "sqrt" => Self::Sqrt,
            _ => return None,
        })
    }

    pub(crate) fn eval(self, x: f64) -> R<f64> {
        // CPython's math_1: NaN from non-NaN is a domain error; inf from finite is an overflow
        // (or, for log, a domain error).
        let (r, can_overflow) = match self {
            Self::Sin => (x.sin(), false),
            Self::Cos => (x.cos(), false),
            Self::Tan => (x.tan(), false),
            Self::Sinh => (x.sinh(), true),
            Self::Cosh => (x.cosh(), true),
            Self::Tanh => (x.tanh(), false),
            Self::Exp => (x.exp(), true),
            Self::Sqrt => {
                if x < 0.0 {
                    return Err(status::DOMAIN);
                }
                return Ok(x.sqrt());
            }
            Self::Log => {
                if x.is_nan() || x == f64::INFINITY {
                    return Ok(x);
                }
                if x <= 0.0 {
                    return Err(status::DOMAIN);
                }
                return Ok(x.ln());
            }
        };
        if r.is_nan() && !x.is_nan() {
            return Err(status::DOMAIN);
        }
        if r.is_infinite() && x.is_finite() {
            return Err(if can_overflow {
                status::FLOAT_OVERFLOW
            } else {
                status::DOMAIN
            });
        }
        Ok(r)
    }

    pub(crate) fn shim(self) -> (&'static str, *const u8) {
        macro_rules! s {
            ($name:literal, $f:ident) => {
                (
                    $name,
                    $f as extern "C" fn(f64, *mut u32) -> f64 as *const u8,
                )
            };
        }
        match self {
            Self::Sin => s!("iris_jit_sin", shim_sin),
            Self::Cos => s!("iris_jit_cos", shim_cos),
            Self::Tan => s!("iris_jit_tan", shim_tan),
            Self::Sinh => s!("iris_jit_sinh", shim_sinh),
            Self::Cosh => s!("iris_jit_cosh", shim_cosh),
            Self::Tanh => s!("iris_jit_tanh", shim_tanh),
            Self::Exp => s!("iris_jit_exp", shim_exp),
            Self::Log => s!("iris_jit_log", shim_log),
            Self::Sqrt => s!("iris_jit_sqrt", shim_sqrt),
        }
    }
}

/// Writes a failure into the caller's status slot; generated code checks it after the call.
fn report<T: Default>(r: R<T>, st: *mut u32) -> T {
    match r {
        Ok(v) => v,
        Err(code) => {
            // SAFETY: generated code always passes a pointer to its own live, aligned u32 slot.
            unsafe { st.write(code) };
            T::default()
        }
    }
}

macro_rules! math_shims {
    ($($name:ident => $f:ident),*) => {$(
        extern "C" fn $name(x: f64, st: *mut u32) -> f64 {
            report(MathFn::$f.eval(x), st)
        }
    )*};
}
math_shims!(shim_sin => Sin, shim_cos => Cos, shim_tan => Tan, shim_sinh => Sinh,
    shim_cosh => Cosh, shim_tanh => Tanh, shim_exp => Exp, shim_log => Log, shim_sqrt => Sqrt);

macro_rules! bin_shims {
    ($($name:ident: ($a:ty, $b:ty) -> $r:ty = $f:ident),*) => {$(
        pub(crate) extern "C" fn $name(a: $a, b: $b, st: *mut u32) -> $r {
            report($f(a, b), st)
        }
    )*};
}
bin_shims!(
    shim_f_pow: (f64, f64) -> f64 = f_pow,
    shim_m_pow: (f64, f64) -> f64 = m_pow,
    shim_f_floordiv: (f64, f64) -> f64 = f_floordiv,
    shim_f_mod: (f64, f64) -> f64 = f_mod,
    shim_i_floordiv: (i64, i64) -> i64 = i_floordiv,
    shim_i_mod: (i64, i64) -> i64 = i_mod,
    shim_i_pow: (i64, i64) -> i64 = i_pow,
    shim_i_truediv: (i64, i64) -> f64 = i_truediv
);

macro_rules! un_shims {
    ($($name:ident: ($a:ty) -> $r:ty = $f:ident),*) => {$(
        pub(crate) extern "C" fn $name(a: $a, st: *mut u32) -> $r {
            report($f(a), st)
        }
    )*};
}
un_shims!(
    shim_f_pow_half: (f64) -> f64 = f_pow_half,
    shim_i_to_f_exact: (i64) -> f64 = i_to_f_exact,
    shim_f_to_int: (f64) -> i64 = f_to_int,
    shim_f_round: (f64) -> i64 = f_round
);

pub(crate) extern "C" fn shim_range_sum(kind: i64, c: i64, a: i64, b: i64, st: *mut u32) -> i64 {
    let kind = match kind {
        0 => RangeSum::Const(c),
        1 => RangeSum::Linear,
        _ => RangeSum::Square,
    };
    report(range_sum(kind, a, b), st)
}

pub(crate) extern "C" fn shim_cmp_if(i: i64, f: f64) -> i32 {
    cmp_if(i, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_modulo_and_floor_division() {
        assert_eq!(i_mod(-7, 3), Ok(2));
        assert_eq!(i_mod(7, -3), Ok(-2));
        assert_eq!(i_floordiv(-7, 2), Ok(-4));
        assert_eq!(i_floordiv(7, -2), Ok(-4));
        assert_eq!(i_floordiv(i64::MIN, -1), Err(status::INT_OVERFLOW));
        assert_eq!(i_mod(i64::MIN, -1), Ok(0));
        assert_eq!(f_mod(-7.0, 3.0), Ok(2.0));
        assert_eq!(f_mod(-1.0, f64::INFINITY), Ok(f64::INFINITY));
        assert!(f_mod(0.0, -2.0).unwrap().is_sign_negative());
        assert_eq!(f_floordiv(-7.0, 2.0), Ok(-4.0));
        assert_eq!(f_floordiv(1.0, 0.0), Err(status::ZERO_DIV));
    }

    #[test]
    fn python_pow() {
        assert_eq!(f_pow(-0.0, 0.5), Ok(0.0));
        assert!(f_pow(-0.0, 0.5).unwrap().is_sign_positive());
        assert_eq!(f_pow(f64::NEG_INFINITY, 0.5), Ok(f64::INFINITY));
        assert_eq!(f_pow(-8.0, 1.0 / 3.0), Err(status::DOMAIN));
        assert_eq!(f_pow(0.0, -1.0), Err(status::ZERO_DIV));
        assert_eq!(f_pow(2.0, 5000.0), Err(status::FLOAT_OVERFLOW));
        assert_eq!(f_pow(-2.0, 3.0), Ok(-8.0));
        assert_eq!(f_pow(f64::NAN, 0.0), Ok(1.0));
        assert_eq!(f_pow(1.0, f64::NAN), Ok(1.0));
        assert_eq!(i_pow(2, 62), Ok(1 << 62));
        assert_eq!(i_pow(2, 63), Err(status::INT_OVERFLOW));
        assert_eq!(i_pow(-1, i64::MAX), Ok(-1));
    }

    #[test]
    fn rounding_and_comparison() {
        assert_eq!(f_round(2.5), Ok(2));
        assert_eq!(f_round(3.5), Ok(4));
        assert_eq!(f_round(-2.5), Ok(-2));
        assert_eq!(f_to_int(-2.7), Ok(-2));
        assert_eq!(f_to_int(9.3e18), Err(status::INT_OVERFLOW));
        assert_eq!(cmp_if((1 << 53) + 1, 9007199254740992.0), 1);
        assert_eq!(cmp_if(i64::MAX, 9_223_372_036_854_775_808.0), -1);
        assert_eq!(cmp_if(3, f64::NAN), 2);
        assert_eq!(cmp_if(-3, -3.0), 0);
    }

    fn loop_sum(kind: RangeSum, a: i64, b: i64) -> R<i64> {
        let mut acc = 0i64;
        for j in a..b {
            let t = match kind {
                RangeSum::Const(c) => c,
                RangeSum::Linear => j,
                RangeSum::Square => i_mul(j, j)?,
            };
            acc = i_add(acc, t)?;
        }
        Ok(acc)
    }

    #[test]
    fn range_sum_closed_forms_match_the_loop() {
        for kind in [
            RangeSum::Const(7),
            RangeSum::Const(-3),
            RangeSum::Linear,
            RangeSum::Square,
        ] {
            for a in -40..40 {
                for b in -40..40 {
                    assert_eq!(
                        range_sum(kind, a, b),
                        loop_sum(kind, a, b),
                        "{kind:?} {a} {b}"
                    );
                }
            }
        }
        // overflow of partial sums is reported like the loop's
        assert_eq!(
            range_sum(RangeSum::Linear, -(1 << 40), 1 << 40),
            Err(status::INT_OVERFLOW)
        );
        assert_eq!(
            range_sum(RangeSum::Linear, 0, 4_294_967_296),
            Ok(i64::MAX - (1 << 31) + 1)
        );
        assert_eq!(
            range_sum(RangeSum::Linear, 0, 4_294_967_298),
            Err(status::INT_OVERFLOW)
        );
        assert_eq!(
            range_sum(RangeSum::Linear, 0, 1 << 20),
            loop_sum(RangeSum::Linear, 0, 1 << 20)
        );
        assert_eq!(
            range_sum(RangeSum::Square, 3_037_000_400, 3_037_000_500),
            Err(status::INT_OVERFLOW)
        );
        assert_eq!(
            range_sum(RangeSum::Const(i64::MAX), 0, 2),
            Err(status::INT_OVERFLOW)
        );
        assert_eq!(
            range_sum(RangeSum::Square, -1000, 1000),
            loop_sum(RangeSum::Square, -1000, 1000)
        );
    }

    #[test]
    fn fastmath_powers_keep_python_special_cases_and_errors() {
        let bits = |r: R<f64>| r.map(f64::to_bits);
        for x in [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-310,
            -1e-310,
            1e200,
            -1e200,
            3.0,
            -3.0,
        ] {
            assert_eq!(bits(f_square(x)), bits(f_pow(x, 2.0)), "{x:e}");
            assert_eq!(bits(f_recip(x)), bits(f_pow(x, -1.0)), "{x:e}");
        }
        assert_eq!(f_square(1e200), Err(status::FLOAT_OVERFLOW));
        assert_eq!(f_recip(-0.0), Err(status::ZERO_DIV));
        assert_eq!(f_recip(1e-310), Err(status::FLOAT_OVERFLOW));
    }

    #[test]
    fn pow_half_special_cases_match_pow() {
        // Only the special cases are guaranteed: libm's pow(x, 0.5) is not always the correctly
        // rounded sqrt(x) (glibc differs by one ulp at 2.0285093053495667e-112), which is why
        // the optimizer rewrites `x ** 0.5` to sqrt only under fastmath.
        for v in [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            f64::NAN,
            4.0,
            0.25,
        ] {
            assert_eq!(
                f_pow_half(v).map(f64::to_bits),
                f_pow(v, 0.5).map(f64::to_bits),
                "{v}"
            );
        }
    }

    #[test]
    fn sqrt_shortcut_of_pow_half_is_bit_identical_to_pow() {
        // the README's counterexamples to `x ** 0.5 == sqrt(x)` must take `pow`
        let hard = 2.0285093053495667e-112_f64;
        assert_eq!(f_pow(hard, 0.5), Ok(hard.powf(0.5)));
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut shortcut = 0u32;
        for i in 0..2_000_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // every exponent, random mantissas; every 4th near a small integer's square
            let x = if i % 4 == 0 {
                let k = f64::from(i % 100_000 + 1);
                k * k * (1.0 + (state >> 40) as f64 * 1e-16)
            } else {
                f64::from_bits(state >> 1)
            };
            if !(x.is_finite() && x > 0.0) {
                continue;
            }
            let want = x.powf(0.5);
            assert_eq!(f_pow(x, 0.5).map(f64::to_bits), Ok(want.to_bits()), "{x:e}");
            shortcut += u32::from(sqrt_where_pow_agrees(x).is_some());
        }
        #[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
        if std::arch::is_x86_feature_detected!("fma") {
            assert!(
                shortcut > 1_000_000,
                "the shortcut covers most inputs: {shortcut}"
            );
        }
        let _ = shortcut;
    }
}
