//! Smoke test of the public API.
use iris_jit::{CompileOptions, Jit, Value};

#[test]
fn smoke() {
    let f = Jit::compile("x + 1", &["x"], &CompileOptions::default()).unwrap();
    assert_eq!(f.call_scalar(&[Value::F64(1.5)]).unwrap(), Value::F64(2.5));
    assert_eq!(f.call_scalar(&[Value::I64(1)]).unwrap(), Value::I64(2));
}
