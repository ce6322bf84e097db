//! Differential testing: random expressions from the grammar, random inputs (negative, zero,
//! NaN, infinities, huge ints); the optimized JIT, the unoptimized JIT, every quantum variant
//! and the reference interpreter must agree bit for bit, errors included. (Transcendental
//! functions go through the same Rust shims everywhere, so no ulp slack is needed.)
use iris_jit::{Arg, CompileOptions, Jit, JitError, Value};
use proptest::prelude::*;

fn leaf(local: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        Just("x".to_owned()),
        Just("y".to_owned()),
        Just("n".to_owned()),
        Just(local.to_owned()),
        (-5i64..6).prop_map(|v| v.to_string()),
        Just("9223372036854775807".to_owned()),
        prop::sample::select(vec![
            "0.5", "2.5", "0.0", "1e-3", "1e308", "3.0", "pi", "e", "True", "False", "1_000"
        ])
        .prop_map(str::to_owned),
    ]
}

fn expr(local: &'static str) -> impl Strategy<Value = String> {
    leaf(local).prop_recursive(5, 48, 3, |inner| {
        let two = (inner.clone(), inner.clone());
        let three = (inner.clone(), inner.clone(), inner.clone());
        prop_oneof![
            (
                two.clone(),
                prop::sample::select(vec!["+", "-", "*", "/", "//", "%", "**"])
            )
                .prop_map(|((a, b), op)| format!("({a} {op} {b})")),
            (inner.clone(), prop::sample::select(vec!["-", "+", "not "]))
                .prop_map(|(a, op)| format!("({op}{a})")),
            (
                two.clone(),
                prop::sample::select(vec!["and", "or", "<", "<=", "==", "!=", ">", ">="])
            )
                .prop_map(|((a, b), op)| format!("({a} {op} {b})")),
            three
                .clone()
                .prop_map(|(a, b, c)| format!("({a} < {b} <= {c})")),
            three
                .clone()
                .prop_map(|(a, b, c)| format!("({a} if {b} else {c})")),
            three
                .clone()
                .prop_map(|(a, b, c)| format!("if_else({a}, {b}, {c})")),
            two.clone().prop_map(|(a, b)| format!("min({a}, {b})")),
            three
                .clone()
                .prop_map(|(a, b, c)| format!("max({a}, {b}, {c})")),
            two.clone().prop_map(|(a, b)| format!("pow({a}, {b})")),
            (
                inner.clone(),
                prop::sample::select(vec![
                    "abs",
                    "int",
                    "float",
                    "round",
                    "sin",
                    "math.cos",
                    "tan",
                    "sinh",
                    "math.cosh",
                    "tanh",
                    "exp",
                    "math.log",
                    "sqrt",
                    "math.sqrt",
                ])
            )
                .prop_map(|(a, f)| format!("{f}({a})")),
            (
                inner.clone(),
                prop::sample::select(vec![
                    "sum(({a}) * i for i in range(n))",
                    "sum(i * i for i in range(1, n))",
                    "sum(i for i in range(-3, n, 2) if ({a}))",
                    "any(({a}) > i for i in range(n, 0, -1))",
                    "all(i < ({a}) for i in range(n))",
                    "sum(break_if(i > 4, ({a}) + i) for i in range(n))",
                    "sum(continue_unless(i % 3, i - ({a})) for i in range(n))",
                    "sum_while(k, 0, k < 4, k + 1, ({a}) * k)",
                    "any_while(k, 0.5, k < 3, k + 1, k > ({a}))",
                ])
            )
                .prop_map(|(a, tpl)| tpl.replace("{a}", &a)),
        ]
    })
}

/// A program: a local binding, then an expression that may use it.
fn program() -> impl Strategy<Value = String> {
    (expr("x"), expr("t")).prop_map(|(a, b)| format!("t = {a}\n{b}"))
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            0.0,
            -0.0,
            1.5,
            -2.5,
            3.0,
            1e-310,
            1e308,
            -1e308,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ])
        .prop_map(Value::F64),
        any::<f64>().prop_map(Value::F64),
        (-1e6f64..1e6).prop_map(Value::F64),
        prop::sample::select(vec![
            0i64,
            1,
            -1,
            2,
            -7,
            3,
            i64::MAX,
            i64::MIN,
            1 << 53,
            (1 << 53) + 1
        ])
        .prop_map(Value::I64),
        (-1000i64..1000).prop_map(Value::I64),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn loop_bound() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (-5i64..12).prop_map(Value::I64),
        1 => Just(Value::F64(2.5)),
        1 => any::<bool>().prop_map(Value::Bool),
    ]
}

fn same(a: &Result<Value, JitError>, b: &Result<Value, JitError>) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x.same(*y),
        (Err(x), Err(y)) => x == y,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn jit_variants_agree_with_the_interpreter(
        src in program(),
        inputs in prop::collection::vec((value(), value(), loop_bound()), 4),
    ) {
        let params = ["x", "y", "n"];
        let opt = Jit::compile(&src, &params, &CompileOptions::default().sum_while_cap(10_000)).unwrap();
        let plain = Jit::compile(&src, &params, &CompileOptions::default().optimize(false).opt_level(iris_jit::OptLevel::None)).unwrap();
        let quantum = Jit::compile(&src, &params, &CompileOptions::default().quantum(true)).unwrap();
        for (x, y, n) in inputs {
            let args = [Arg::Scalar(x), Arg::Scalar(y), Arg::Scalar(n)];
            let want = opt.interpret(&args);
            let got = opt.call(&args);
            prop_assert!(same(&got, &want), "{src} with {x:?} {y:?} {n:?}: optimized {got:?} vs interpreter {want:?}");
            let got = plain.call(&args);
            prop_assert!(same(&got, &want), "{src} with {x:?} {y:?} {n:?}: unoptimized {got:?} vs interpreter {want:?}");
            for v in 0..quantum.variants() {
                let got = quantum.call_variant(v, &args);
                prop_assert!(same(&got, &want), "{src} with {x:?} {y:?} {n:?}: variant {v} {got:?} vs {want:?}");
            }
            let got = quantum.call(&args);
            prop_assert!(same(&got, &want), "{src}: dispatcher {got:?} vs {want:?}");
        }
    }

    #[test]
    fn element_wise_calls_agree_with_scalar_calls(
        src in program(),
        xs in prop::collection::vec(value(), 0..20),
        y in value(),
    ) {
        let f = Jit::compile(&src, &["x", "y", "n"], &CompileOptions::default()).unwrap();
        let floats: Vec<f64> = xs.iter().map(|v| v.as_f64()).collect();
        let n = Value::I64(3);
        let out = f.call_vector(&[Arg::f64s(&floats), Arg::Scalar(y), Arg::Scalar(n)]);
        let scalar: Vec<Result<Value, JitError>> = floats
            .iter()
            .map(|x| f.call_scalar(&[Value::F64(*x), y, n]))
            .collect();
        match out {
            Ok(col) => {
                prop_assert_eq!(col.len(), floats.len());
                for (i, s) in scalar.iter().enumerate() {
                    prop_assert!(same(&col.get(i).ok_or(JitError::Inexact), s), "{src}[{i}]");
                }
            }
            Err(e) => {
                let first = scalar.iter().find_map(|r| r.as_ref().err());
                prop_assert_eq!(Some(&e), first, "{}", src);
            }
        }
    }
}
