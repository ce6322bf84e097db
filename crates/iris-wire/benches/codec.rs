//! Encode + decode throughput of 64-byte user frames.
#![allow(missing_docs)]

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iris_wire::{DecodedFrame, Frame, FrameCodec};
use std::hint::black_box;
use tokio_util::codec::{Decoder, Encoder};

const BATCH: usize = 1024;

fn user_frames(c: &mut Criterion) {
    let frame = Frame::User {
        target: 42,
        sender: 7,
        data: Bytes::from(vec![0xAB; 64]),
    };
    let mut group = c.benchmark_group("user_64b");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("encode_decode", |b| {
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::with_capacity(BATCH * 96);
        b.iter(|| {
            for _ in 0..BATCH {
                codec.encode(black_box(&frame), &mut buf).unwrap();
            }
            let mut n = 0;
            while let Some(DecodedFrame::Frame(f)) = codec.decode(&mut buf).unwrap() {
                black_box(f);
                n += 1;
            }
            assert_eq!(n, BATCH);
        });
    });
    group.finish();
}

criterion_group!(benches, user_frames);
criterion_main!(benches);
