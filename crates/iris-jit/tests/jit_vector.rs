//! Element-wise, container and reduction executors over typed buffers.
use iris_jit::{Arg, CompileOptions, DType, Jit, JitError, Reducer, Value, VecOut};

/// Encodes `vals` (as f64) in `dtype`, at byte offset `shift` of the returned buffer.
fn encode(vals: &[f64], dtype: DType, shift: usize) -> Vec<u8> {
    let mut out = vec![0u8; shift];
    for &v in vals {
        match dtype {
            DType::F64 => out.extend(v.to_ne_bytes()),
            DType::F32 => out.extend((v as f32).to_ne_bytes()),
            DType::I8 => out.extend((v as i8).to_ne_bytes()),
            DType::I16 => out.extend((v as i16).to_ne_bytes()),
            DType::I32 => out.extend((v as i32).to_ne_bytes()),
            DType::I64 => out.extend((v as i64).to_ne_bytes()),
            DType::U8 => out.extend((v as u8).to_ne_bytes()),
            DType::U16 => out.extend((v as u16).to_ne_bytes()),
            DType::U32 => out.extend((v as u32).to_ne_bytes()),
            DType::U64 => out.extend((v as u64).to_ne_bytes()),
            DType::Bool => out.push(u8::from(v != 0.0)),
        }
    }
    out
}

#[test]
fn every_dtype_element_wise_and_unaligned() {
    let f = Jit::compile("x * 2 + y", &["x", "y"], &CompileOptions::default()).unwrap();
    let vals = [0.0, 1.0, 2.0, 3.0, 100.0, 7.0];
    for dtype in DType::ALL {
        for shift in [0, 1, 3] {
            let buf = encode(&vals, dtype, shift);
            let x = Arg::Buffer {
                bytes: &buf[shift..],
                dtype,
            };
            let out = f.call_vector(&[x, Arg::Scalar(Value::I64(1))]).unwrap();
            assert_eq!(out.len(), vals.len());
            for i in 0..vals.len() {
                let elem = dtype.read(&buf[shift..], i).unwrap();
                let want = f.call_scalar(&[elem, Value::I64(1)]).unwrap();
                assert!(
                    out.get(i).unwrap().same(want),
                    "{dtype:?} shift {shift} [{i}]"
                );
                // the container path reads the same element
                let g =
                    Jit::compile("sum(v for v in x)", &["x"], &CompileOptions::default()).unwrap();
                let s = g.call(&[x]).unwrap();
                assert_eq!(s, g.interpret(&[x]).unwrap(), "{dtype:?}");
            }
        }
    }
}

#[test]
fn length_mismatch_and_bad_sizes_are_errors() {
    let f = Jit::compile("x + y", &["x", "y"], &CompileOptions::default()).unwrap();
    let a = [1.0, 2.0, 3.0];
    let b = [1.0, 2.0];
    assert_eq!(
        f.call_vector(&[Arg::f64s(&a), Arg::f64s(&b)]),
        Err(JitError::LengthMismatch {
            expected: 3,
            got: 2
        })
    );
    let bytes = [0u8; 7];
    assert_eq!(
        f.call_vector(&[
            Arg::Buffer {
                bytes: &bytes,
                dtype: DType::F64
            },
            Arg::f64s(&b)
        ]),
        Err(JitError::BufferSize {
            len: 7,
            itemsize: 8
        })
    );
    assert!(matches!(
        f.call_vector(&[Arg::f64s(&a)]),
        Err(JitError::ArgCount { .. })
    ));
}

#[test]
fn large_inputs_split_across_cores_keep_order_and_first_error() {
    let n = 200_000;
    let x: Vec<f64> = (0..n).map(|i| i as f64 - 1000.0).collect();
    let f = Jit::compile("(x*x + 1) ** 0.5", &["x"], &CompileOptions::default()).unwrap();
    let out = f.call_vector(&[Arg::f64s(&x)]).unwrap();
    let VecOut::F64(out) = out else {
        panic!("float column expected")
    };
    for (i, v) in out.iter().enumerate().step_by(997) {
        assert_eq!(v.to_bits(), (x[i] * x[i] + 1.0).powf(0.5).to_bits());
    }
    let g = Jit::compile("1 / x", &["x"], &CompileOptions::default()).unwrap();
    assert_eq!(g.call_vector(&[Arg::f64s(&x)]), Err(JitError::ZeroDivision));
}

#[test]
fn reductions_follow_python_and_short_circuit() {
    let x: Vec<f64> = (0..100_000).map(|i| (i as f64) * 0.1 + 0.01).collect();
    let exact = Jit::compile("x * x", &["x"], &CompileOptions::default()).unwrap();
    let s = exact.reduce(Reducer::Sum, &[Arg::f64s(&x)]).unwrap();
    let want = x.iter().fold(0.0, |a, v| a + v * v);
    assert_eq!(s, Value::F64(want), "bit-identical left-to-right sum");
    let fast = Jit::compile("x * x", &["x"], &CompileOptions::default().fastmath(true)).unwrap();
    let Value::F64(f) = fast.reduce(Reducer::Sum, &[Arg::f64s(&x)]).unwrap() else {
        panic!()
    };
    assert!((f - want).abs() <= want * 1e-12);
    // sum of -0.0 starts from int 0, as in CPython
    let z = [-0.0];
    let id = Jit::compile("x", &["x"], &CompileOptions::default()).unwrap();
    assert!(
        id.reduce(Reducer::Sum, &[Arg::f64s(&z)])
            .unwrap()
            .same(Value::F64(0.0))
    );
    // any/all stop at the deciding element: the later division by zero never happens
    let d = [1.0, 0.0];
    let g = Jit::compile("1 / x > 0", &["x"], &CompileOptions::default()).unwrap();
    assert_eq!(
        g.reduce(Reducer::Any, &[Arg::f64s(&d)]),
        Ok(Value::Bool(true))
    );
    let h = Jit::compile(
        "break_if(x == 0, 1 / x)",
        &["x"],
        &CompileOptions::default(),
    )
    .unwrap();
    assert_eq!(
        h.reduce(Reducer::Sum, &[Arg::f64s(&[2.0, 4.0, 0.0, 8.0])]),
        Ok(Value::F64(0.75))
    );
    let c = Jit::compile("continue_on_nan(x)", &["x"], &CompileOptions::default()).unwrap();
    assert_eq!(
        c.reduce(Reducer::Sum, &[Arg::f64s(&[1.0, f64::NAN, 2.0])]),
        Ok(Value::F64(3.0))
    );
    let b = Jit::compile("break_on_nan(x)", &["x"], &CompileOptions::default()).unwrap();
    assert_eq!(
        b.reduce(Reducer::Sum, &[Arg::f64s(&[1.0, f64::NAN, 2.0])]),
        Ok(Value::F64(1.0))
    );
    // int sums are exact, in parallel too
    let ints: Vec<u8> = (0..300_000u32)
        .flat_map(|i| i64::from(i).to_ne_bytes())
        .collect();
    let s = id.reduce(
        Reducer::Sum,
        &[Arg::Buffer {
            bytes: &ints,
            dtype: DType::I64,
        }],
    );
    assert_eq!(s, Ok(Value::I64(299_999 * 300_000 / 2)));
}

#[test]
fn containers_inside_expressions() {
    let f = Jit::compile(
        "sum(v * v for v in xs if v > 0) + any(v > 2 for v in xs)",
        &["xs"],
        &CompileOptions::default(),
    )
    .unwrap();
    let xs = [-1.0, 2.0, 3.0];
    assert_eq!(f.call(&[Arg::f64s(&xs)]), Ok(Value::F64(14.0)));
    assert_eq!(f.interpret(&[Arg::f64s(&xs)]), Ok(Value::F64(14.0)));
    let big = encode(&[1.0], DType::U64, 0);
    let mut huge = big.clone();
    huge.copy_from_slice(&u64::MAX.to_ne_bytes());
    let g = Jit::compile("sum(xs)", &["xs"], &CompileOptions::default()).unwrap();
    let arg = Arg::Buffer {
        bytes: &huge,
        dtype: DType::U64,
    };
    assert_eq!(g.call(&[arg]), Err(JitError::IntOverflow));
}

#[test]
fn call_shape_profiles_fall_through_and_respecialize() {
    let f = Jit::compile("x + 1", &["x"], &CompileOptions::default()).unwrap();
    assert_eq!(f.call_scalar(&[Value::F64(1.0)]), Ok(Value::F64(2.0)));
    let v = f.call_vector(&[Arg::f64s(&[1.0, 2.0])]).unwrap();
    assert_eq!(v, VecOut::F64(vec![2.0, 3.0]));
    assert_eq!(f.call_scalar(&[Value::I64(1)]), Ok(Value::I64(2)));
    assert_eq!(f.call_scalar(&[Value::F64(1.0)]), Ok(Value::F64(2.0)));
    // scalar float, element-wise over an f64 buffer, scalar int
    assert_eq!(f.specializations(), 3);
}

#[test]
fn quantum_dispatcher_samples_every_variant_and_never_changes_results() {
    let f = Jit::compile(
        "sum(i * x for i in range(50))",
        &["x"],
        &CompileOptions::default().quantum(true),
    )
    .unwrap();
    assert_eq!(f.variants(), 3);
    for k in 0..2000 {
        let x = f64::from(k) * 0.25;
        assert_eq!(
            f.call_scalar(&[Value::F64(x)]),
            f.interpret(&[Arg::Scalar(Value::F64(x))])
        );
    }
    let stats = f.variant_stats();
    assert!(
        stats.iter().all(|s| s.calls > 0 && s.latency_ns > 0),
        "{stats:?}"
    );
}
