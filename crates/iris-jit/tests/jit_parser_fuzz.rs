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
