//! Tricky cases with CPython's answers, checked on the JIT, the unoptimized JIT, the quantum
//! variants and the reference interpreter.
use iris_jit::{Arg, CompileOptions, Expr, Jit, JitError, Value};

fn all_paths(src: &str, params: &[&str], args: &[Value]) -> Result<Value, JitError> {
    let a: Vec<Arg<'_>> = args.iter().map(|v| Arg::Scalar(*v)).collect();
    let f = Jit::compile(src, params, &CompileOptions::default())?;
    let want = f.interpret(&a);
    for opts in [
        CompileOptions::default().optimize(false),
        CompileOptions::default().quantum(true),
    ] {
        let g = Jit::compile(src, params, &opts)?;
        for v in 0..g.variants() {
            let got = g.call_variant(v, &a);
            assert!(
                same(&got, &want),
                "{src} {args:?}: variant {v}: {got:?} vs {want:?}"
            );
        }
    }
    let got = f.call(&a);
    assert!(same(&got, &want), "{src} {args:?}: {got:?} vs {want:?}");
    got
}

fn same(a: &Result<Value, JitError>, b: &Result<Value, JitError>) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x.same(*y),
        (Err(x), Err(y)) => x == y,
        _ => false,
    }
}

fn eval(src: &str) -> Result<Value, JitError> {
    all_paths(src, &[], &[])
}

use Value::{Bool as B, F64 as F, I64 as I};

#[test]
fn python_answers() {
    let table: &[(&str, Result<Value, JitError>)] = &[
        ("-2**2", Ok(I(-4))),
        ("-2.0**2", Ok(F(-4.0))),
        ("2**-1", Ok(F(0.5))),
        ("2**3**2", Ok(I(512))),
        ("-7 % 3", Ok(I(2))),
        ("7 % -3", Ok(I(-2))),
        ("-7 // 2", Ok(I(-4))),
        ("-7.0 // 2", Ok(F(-4.0))),
        ("-7.5 % 2", Ok(F(0.5))),
        ("7 / 2", Ok(F(3.5))),
        ("6 / 3", Ok(F(2.0))),
        ("round(2.5)", Ok(I(2))),
        ("round(3.5)", Ok(I(4))),
        ("round(-0.5)", Ok(I(0))),
        ("int(-2.7)", Ok(I(-2))),
        ("2 and 3", Ok(I(3))),
        ("0 and 3", Ok(I(0))),
        ("0 or 0.5", Ok(F(0.5))),
        ("not not 5", Ok(B(true))),
        ("not 0.0", Ok(B(true))),
        ("1 < 2 < 3", Ok(B(true))),
        ("3 > 2 > 2", Ok(B(false))),
        ("1 == 1.0", Ok(B(true))),
        ("9007199254740993 == 9007199254740992.0", Ok(B(false))),
        ("True + True", Ok(I(2))),
        ("abs(-3)", Ok(I(3))),
        ("max(1, 2, 3)", Ok(I(3))),
        ("min(2.5, 1.5)", Ok(F(1.5))),
        ("1 if True else 2", Ok(I(1))),
        ("if_else(0, 1, 2)", Ok(I(2))),
        ("1_000 * 1e-3", Ok(F(1.0))),
        ("pi", Ok(F(std::f64::consts::PI))),
        ("math.e", Ok(F(std::f64::consts::E))),
        ("(-0.0) ** 0.5", Ok(F(0.0))),
        ("(-8.0) ** (1/3)", Err(JitError::MathDomain)),
        ("0.0 ** -1", Err(JitError::ZeroDivision)),
        ("1 / 0", Err(JitError::ZeroDivision)),
        ("1.0 // 0.0", Err(JitError::ZeroDivision)),
        ("5 % 0", Err(JitError::ZeroDivision)),
        ("9223372036854775807 + 1", Err(JitError::IntOverflow)),
        ("2 ** 64", Err(JitError::IntOverflow)),
        ("math.sqrt(-1)", Err(JitError::MathDomain)),
        ("math.log(0)", Err(JitError::MathDomain)),
        ("math.exp(1000)", Err(JitError::FloatOverflow)),
        ("2.0 ** 5000", Err(JitError::FloatOverflow)),
        ("sum(i for i in range(10))", Ok(I(45))),
        ("sum(i for i in range(10, 0, -3))", Ok(I(22))),
        ("sum(i for i in range(0, 10, 0))", Err(JitError::ZeroStep)),
        ("sum(i for i in range(2.0))", Err(JitError::FloatRange)),
        ("any(i > 3 for i in range(5))", Ok(B(true))),
        ("all(i < 3 for i in range(5))", Ok(B(false))),
        ("sum(break_if(i > 3, i) for i in range(10))", Ok(I(6))),
        ("sum(continue_if(i % 2, i) for i in range(10))", Ok(I(20))),
        ("sum(break_unless(i < 3, i) for i in range(10))", Ok(I(3))),
        ("sum_while(k, 0, k < 5, k + 1, k * k)", Ok(I(30))),
        ("sum_while(k, 1, k < 3, k + 0.5, k)", Ok(F(7.0))),
        ("y = 3; z = y * y\nz + y", Ok(I(12))),
    ];
    for (src, want) in table {
        let got = eval(src);
        assert!(same(&got, want), "{src}: got {got:?}, want {want:?}");
    }
}

#[test]
fn unary_minus_binds_looser_than_power() {
    for x in [3.0, -3.0, 0.5] {
        let got = all_paths("-x**2", &["x"], &[F(x)]).unwrap();
        assert_eq!(got, F(-(x * x)));
    }
    assert_eq!(
        all_paths("x * 1e-3", &["x"], &[F(5.0)]).unwrap(),
        F(5.0 * 1e-3)
    );
}

#[test]
fn range_sums_with_python_answers() {
    let src = "sum(i*i for i in range(1, n))";
    for (n, want) in [(-3, 0), (0, 0), (1, 0), (4, 14), (1000, 332_833_500)] {
        assert_eq!(all_paths(src, &["n"], &[I(n)]).unwrap(), I(want), "n={n}");
    }
    assert_eq!(all_paths(src, &["n"], &[F(2.5)]), Err(JitError::FloatRange));
    assert_eq!(
        all_paths("sum(i for i in range(n))", &["n"], &[I(-5)]).unwrap(),
        I(0)
    );
    // overflow inside a closed form is reported like the loop
    assert_eq!(
        all_paths(src, &["n"], &[I(4_000_000_000)]),
        Err(JitError::IntOverflow)
    );
    assert_eq!(
        all_paths("sum(i for i in range(m, n))", &["m", "n"], &[I(-10), I(5)]).unwrap(),
        I(-45)
    );
}

#[test]
fn sum_while_cap_is_an_error_not_a_partial_sum() {
    let opts = CompileOptions::default().sum_while_cap(1000);
    let f = Jit::compile("sum_while(k, 0, k >= 0, k + 1, k)", &[], &opts).unwrap();
    assert_eq!(f.call(&[]), Err(JitError::IterationCap { cap: 1000 }));
    assert_eq!(f.interpret(&[]), Err(JitError::IterationCap { cap: 1000 }));
    let f = Jit::compile("sum_while(k, 0, k < 1000, k + 1, 1)", &[], &opts).unwrap();
    assert_eq!(f.call(&[]), Ok(I(1000)));
}

#[test]
fn unknown_names_and_functions_are_compile_errors() {
    let o = CompileOptions::default();
    for src in [
        "x + q",
        "foo(x)",
        "math.floor(x)",
        "x.real",
        "1 + break_if(x, 1)",
        "round(x, 2)",
    ] {
        assert!(
            matches!(Jit::compile(src, &["x"], &o), Err(JitError::Compile(_))),
            "{src}"
        );
    }
}

#[test]
fn control_outside_a_reduction_is_an_error_when_it_fires() {
    let f = Jit::compile("break_if(x > 0, x)", &["x"], &CompileOptions::default()).unwrap();
    assert_eq!(f.call_scalar(&[F(-1.0)]), Ok(F(-1.0)));
    assert_eq!(f.call_scalar(&[F(1.0)]), Err(JitError::ControlOutsideLoop));
}

#[test]
fn ast_can_be_built_programmatically() {
    use iris_jit::BinOp;
    let e = Expr::bin(BinOp::Mul, Expr::var("a"), Expr::Int(3));
    let f = Jit::compile_expr(&e, &["a"], &CompileOptions::default()).unwrap();
    assert_eq!(f.call_scalar(&[I(5)]).unwrap(), I(15));
    assert_eq!(f.call_scalar(&[F(0.5)]).unwrap(), F(1.5));
    assert_eq!(f.specializations(), 2);
}

#[test]
fn return_type_converts_results() {
    use iris_jit::ReturnType;
    let o = CompileOptions::default().return_type(Some(ReturnType::Float));
    let f = Jit::compile("n * 2", &["n"], &o).unwrap();
    assert_eq!(f.call_scalar(&[I(4)]).unwrap(), F(8.0));
    assert_eq!(f.return_type(), iris_jit::Ty::F64);
}

#[test]
fn logging_setter_overrides_the_environment() {
    iris_jit::set_jit_logging(Some(true));
    assert!(iris_jit::jit_logging());
    assert!(Jit::compile("nope(", &[], &CompileOptions::default()).is_err());
    iris_jit::set_jit_logging(Some(false));
    assert!(!iris_jit::jit_logging());
    iris_jit::set_jit_logging(None);
}

#[test]
fn fastmath_power_shortcuts_stay_within_one_ulp_and_keep_errors() {
    let exact = CompileOptions::default();
    let fast = CompileOptions::default().fastmath(true);
    for src in ["x ** 0.5", "x ** 2", "x ** -1.0"] {
        let e = Jit::compile(src, &["x"], &exact).unwrap();
        let f = Jit::compile(src, &["x"], &fast).unwrap();
        let mut x = 1.0e-300f64;
        let specials = [
            0.0,
            -0.0,
            -1.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e-310,
            1e200,
        ];
        let mut xs: Vec<f64> = specials.to_vec();
        while x < 1.0e300 {
            xs.push(x);
            x *= 1.618;
        }
        for x in xs {
            let want = e.call_scalar(&[F(x)]);
            let got = f.call_scalar(&[F(x)]);
            match (want, got) {
                (Ok(F(a)), Ok(F(b))) => {
                    let ulps = (a.to_bits() as i64 - b.to_bits() as i64).abs();
                    assert!(
                        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) || ulps <= 1,
                        "{src} at {x:e}: {a:e} vs {b:e}"
                    );
                }
                (w, g) => assert_eq!(w, g, "{src} at {x:e}"),
            }
        }
    }
}

#[test]
fn param_types_choose_the_eager_specialization() {
    let o = CompileOptions::default().param_types(Some(vec![iris_jit::Ty::I64]));
    let f = Jit::compile("n // 2", &["n"], &o).unwrap();
    assert_eq!(f.return_type(), iris_jit::Ty::I64);
    assert_eq!(f.call_scalar(&[I(-7)]).unwrap(), I(-4));
    assert!(f.compile_time() > std::time::Duration::ZERO);
}

#[test]
fn exact_power_half_is_bit_identical_to_pow() {
    // exact mode keeps `pow`'s result; the inline sqrt shortcut may only apply where they agree
    let f = Jit::compile("x ** 0.5", &["x"], &CompileOptions::default()).unwrap();
    let g = Jit::compile(
        "(x*x + y*y + z*z) ** 0.5",
        &["x", "y", "z"],
        &CompileOptions::default(),
    )
    .unwrap();
    let hard = 2.0285093053495667e-112_f64;
    assert_eq!(f.call_f64s(&[hard]), Ok(Value::F64(hard.powf(0.5))));
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..300_000u32 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let x = if i % 2 == 0 {
            f64::from_bits(state >> 1)
        } else {
            (state >> 11) as f64 * 1e-10
        };
        let want = if x < 0.0 || x.is_nan() && x.is_sign_negative() {
            None
        } else {
            Some(x.powf(0.5))
        };
        match (f.call_f64s(&[x]), want) {
            (Ok(Value::F64(r)), Some(w)) => {
                assert!(
                    r.to_bits() == w.to_bits() || r.is_nan() && w.is_nan(),
                    "{x:e}"
                )
            }
            (Err(_), _) | (_, None) => {}
            (r, w) => panic!("{x:e}: {r:?} vs {w:?}"),
        }
        let (a, b, c) = (x.sqrt(), (i as f64) * 0.37, 1.0 / (1.0 + i as f64));
        let want = (a * a + b * b + c * c).powf(0.5);
        if want.is_finite() {
            assert_eq!(
                g.call_f64s(&[a, b, c]),
                Ok(Value::F64(want)),
                "{a:e} {b:e} {c:e}"
            );
        }
    }
    // special cases stay CPython's
    assert_eq!(f.call_f64s(&[0.0]), Ok(Value::F64(0.0)));
    assert_eq!(f.call_f64s(&[f64::INFINITY]), Ok(Value::F64(f64::INFINITY)));
    assert_eq!(f.call_f64s(&[-1.0]), Err(JitError::MathDomain));
}
