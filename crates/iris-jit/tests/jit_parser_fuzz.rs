//! Random bytes and token soups never panic the front end (or the compiler behind it).
use iris_jit::{CompileOptions, Jit};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let src = String::from_utf8_lossy(&bytes);
        let _ = Jit::compile(&src, &["x", "y"], &CompileOptions::default());
    }

    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(vec![
        "x", "y", "1", "2.5", "1e-3", "(", ")", "+", "-", "*", "**", "/", "//", "%", "<", "==",
        "and", "or", "not", "if", "else", "for", "in", "range", "sum", "any", ",", "math", ".",
        "sqrt", "=", ";", "\n", "True", "break_if", "sum_while", "i", "lambda", "[", "]",
    ]), 0..24)) {
        let src = toks.join(" ");
        let _ = Jit::compile(&src, &["x", "y"], &CompileOptions::default());
    }
}

#[test]
fn long_flat_constructs_are_rejected_or_compiled_without_overflow() {
    let quantum = CompileOptions::default().quantum(true);
    for n in [10, 150, 5000] {
        for src in [
            vec!["x"; n].join(" and "),
            format!("min({})", vec!["x"; n].join(", ")),
            format!("{} < 1", vec!["x"; n].join(" < ")),
            vec!["x"; n].join(" + "),
        ] {
            match Jit::compile(&src, &["x"], &quantum) {
                Ok(f) => {
                    let x = iris_jit::Value::F64(0.5);
                    assert!(f.call_scalar(&[x]).is_ok(), "{n}");
                    assert_eq!(
                        f.interpret(&[iris_jit::Arg::Scalar(x)]),
                        f.call_scalar(&[x])
                    );
                }
                Err(e) => assert!(n > 100, "{n}: {e}"),
            }
        }
    }
}
