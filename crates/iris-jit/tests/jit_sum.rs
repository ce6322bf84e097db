//! One-pass `sum` kernels: exact mode is bit-identical to a left-to-right fold of the
//! element-wise values; fastmath (`f64x2` accumulators, partial sums across cores) stays within
//! rounding, with the vector tails, NaN, errors and unaligned buffers handled like the scalar loop.
use iris_jit::{Arg, CompileOptions, DType, Jit, JitError, Reducer, Value, VecOut};

/// A deterministic pseudo-random f64 in [-8, 8).
fn rnd(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 11) as f64 / (1u64 << 53) as f64) * 16.0 - 8.0
}

fn data(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n).map(|_| rnd(&mut s)).collect()
}

/// The element-wise values, summed left to right from int 0 as CPython's `sum` does.
fn oracle(f: &iris_jit::CompiledExpr, args: &[Arg<'_>]) -> Result<(f64, f64), JitError> {
    let VecOut::F64(v) = f.call_vector(args)? else {
        panic!("float expression");
    };
    Ok((
        v.iter().fold(0.0, |a, x| a + x),
        v.iter().map(|x| x.abs()).sum(),
    ))
}

const EXPRS: [&str; 6] = [
    "x * x",
    "x*x + y*y",
    "(x - y) * (x + y) - k",
    "abs(x) * k + -y",
    "sqrt(abs(x)) + x / (abs(y) + 1)",
    "t = x * k; t * t - y",
];

const LENS: [usize; 16] = [
    0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 1000, 1003, 300_001,
];

#[test]
fn exact_sums_are_bit_identical_and_fastmath_within_rounding() {
    let exact = CompileOptions::default();
    let fast = CompileOptions::default().fastmath(true);
    for src in EXPRS {
        let e = Jit::compile(src, &["x", "y", "k"], &exact).unwrap();
        let f = Jit::compile(src, &["x", "y", "k"], &fast).unwrap();
        for n in LENS {
            let x = data(n, 1 + n as u64);
            let y = data(n, 99 + n as u64);
            let args = [Arg::f64s(&x), Arg::f64s(&y), Arg::Scalar(Value::F64(0.75))];
            let (want, mag) = oracle(&e, &args).unwrap();
            let got = e.reduce(Reducer::Sum, &args).unwrap();
            assert!(got.same(Value::F64(want)), "{src} n={n}: {got:?} != {want}");
            let Value::F64(g) = f.reduce(Reducer::Sum, &args).unwrap() else {
                panic!("float sum");
            };
            let tol = mag * (n as f64 + 1.0) * f64::EPSILON;
            assert!(
                (g - want).abs() <= tol,
                "{src} n={n}: fastmath {g} vs {want}"
            );
        }
    }
}

#[test]
fn fastmath_sums_of_few_elements_equal_the_exact_ones() {
    // fewer elements than one vector block: only the scalar tail runs, in order
    let f = Jit::compile("x * x", &["x"], &CompileOptions::default().fastmath(true)).unwrap();
    for n in 0..8 {
        let x = data(n, 5);
        let want = x.iter().fold(0.0, |a, v| a + v * v);
        assert_eq!(
            f.reduce(Reducer::Sum, &[Arg::f64s(&x)]),
            Ok(Value::F64(want))
        );
    }
    assert!(
        f.reduce(Reducer::Sum, &[Arg::f64s(&[-0.0])])
            .unwrap()
            .same(Value::F64(0.0))
    );
}

#[test]
fn nan_and_infinities_propagate_in_every_position() {
    for opts in [
        CompileOptions::default(),
        CompileOptions::default().fastmath(true),
    ] {
        let f = Jit::compile("x * y", &["x", "y"], &opts).unwrap();
        for n in [1, 2, 3, 8, 9, 17, 100, 300_001] {
            for at in [0, n / 2, n - 1] {
                let y = vec![1.0; n];
                let mut x = data(n, 3);
                x[at] = f64::NAN;
                let r = f.reduce(Reducer::Sum, &[Arg::f64s(&x), Arg::f64s(&y)]);
                assert!(
                    matches!(r, Ok(Value::F64(v)) if v.is_nan()),
                    "n={n} at={at}"
                );
                x[at] = f64::INFINITY;
                let r = f.reduce(Reducer::Sum, &[Arg::f64s(&x), Arg::f64s(&y)]);
                assert_eq!(r, Ok(Value::F64(f64::INFINITY)), "n={n} at={at}");
                x[0] = f64::NEG_INFINITY;
                if at != 0 {
                    let r = f.reduce(Reducer::Sum, &[Arg::f64s(&x), Arg::f64s(&y)]);
                    assert!(matches!(r, Ok(Value::F64(v)) if v.is_nan()), "inf - inf");
                }
            }
        }
    }
}

#[test]
fn errors_in_vector_blocks_and_tails_are_reported() {
    for opts in [
        CompileOptions::default(),
        CompileOptions::default().fastmath(true),
    ] {
        let div = Jit::compile("1 / x", &["x"], &opts).unwrap();
        let root = Jit::compile("sqrt(x)", &["x"], &opts).unwrap();
        for n in [1, 3, 8, 9, 19, 1000, 300_001] {
            for at in [0, n / 2, n - 1] {
                let mut x = vec![2.0; n];
                x[at] = 0.0;
                assert_eq!(
                    div.reduce(Reducer::Sum, &[Arg::f64s(&x)]),
                    Err(JitError::ZeroDivision),
                    "n={n} at={at}"
                );
                x[at] = -1.0;
                assert_eq!(
                    root.reduce(Reducer::Sum, &[Arg::f64s(&x)]),
                    Err(JitError::MathDomain),
                    "n={n} at={at}"
                );
            }
        }
    }
}

#[test]
fn unaligned_and_non_f64_buffers_take_the_same_results() {
    let x = data(1001, 11);
    for shift in [0, 1, 3] {
        let mut bytes = vec![0u8; shift];
        for v in &x {
            bytes.extend(v.to_ne_bytes());
        }
        let arg = Arg::Buffer {
            bytes: &bytes[shift..],
            dtype: DType::F64,
        };
        for opts in [
            CompileOptions::default(),
            CompileOptions::default().fastmath(true),
        ] {
            let f = Jit::compile("x * x + 1", &["x"], &opts).unwrap();
            let want = x.iter().fold(0.0, |a, v| a + (v * v + 1.0));
            let Value::F64(g) = f.reduce(Reducer::Sum, &[arg]).unwrap() else {
                panic!("float sum");
            };
            assert!((g - want).abs() <= want * 1e-12, "shift {shift}");
        }
    }
    // f32 elements are widened: the scalar loop, in fastmath too
    let f32s: Vec<u8> = (0..33)
        .flat_map(|i| (i as f32 * 0.5).to_ne_bytes())
        .collect();
    let f = Jit::compile("x * 2", &["x"], &CompileOptions::default().fastmath(true)).unwrap();
    let r = f.reduce(
        Reducer::Sum,
        &[Arg::Buffer {
            bytes: &f32s,
            dtype: DType::F32,
        }],
    );
    assert_eq!(r, Ok(Value::F64((0..33).map(|i| i as f64).sum())));
    // int and bool sums stay exact integers, and report overflow
    let ints: Vec<u8> = [i64::MAX, 1].iter().flat_map(|v| v.to_ne_bytes()).collect();
    let id = Jit::compile("x", &["x"], &CompileOptions::default().fastmath(true)).unwrap();
    let int_arg = Arg::Buffer {
        bytes: &ints,
        dtype: DType::I64,
    };
    assert_eq!(
        id.reduce(Reducer::Sum, &[int_arg]),
        Err(JitError::IntOverflow)
    );
    let bools = [1u8, 0, 1, 1];
    let b = Arg::Buffer {
        bytes: &bools,
        dtype: DType::Bool,
    };
    assert_eq!(id.reduce(Reducer::Sum, &[b]), Ok(Value::I64(3)));
}

#[test]
fn fastmath_power_shortcuts_vectorize_within_rounding() {
    let src = "abs(x) ** 0.5 + y ** 2";
    let e = Jit::compile(src, &["x", "y"], &CompileOptions::default()).unwrap();
    let f = Jit::compile(src, &["x", "y"], &CompileOptions::default().fastmath(true)).unwrap();
    for n in [0, 1, 5, 16, 17, 1003, 300_001] {
        let x = data(n, 21);
        let y = data(n, 22);
        let args = [Arg::f64s(&x), Arg::f64s(&y)];
        let (want, mag) = oracle(&e, &args).unwrap();
        assert!(
            e.reduce(Reducer::Sum, &args)
                .unwrap()
                .same(Value::F64(want))
        );
        let Value::F64(g) = f.reduce(Reducer::Sum, &args).unwrap() else {
            panic!("float sum");
        };
        assert!(
            (g - want).abs() <= mag * (n as f64 + 4.0) * f64::EPSILON,
            "n={n}"
        );
    }
    // overflow of the square is Python's OverflowError, in any lane
    let mut y = vec![1.0; 40];
    y[21] = 1e200;
    let x = vec![1.0; 40];
    assert_eq!(
        f.reduce(Reducer::Sum, &[Arg::f64s(&x), Arg::f64s(&y)]),
        Err(JitError::FloatOverflow)
    );
    // (-0.0) ** 0.5 is 0.0
    let z = [-0.0; 16];
    let h = Jit::compile(
        "x ** 0.5",
        &["x"],
        &CompileOptions::default().fastmath(true),
    )
    .unwrap();
    assert!(
        h.reduce(Reducer::Sum, &[Arg::f64s(&z)])
            .unwrap()
            .same(Value::F64(0.0))
    );
}
