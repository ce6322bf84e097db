//! Feeds arbitrary bytes to `FrameCodec` in chunks. The first byte picks the chunk size and the
//! max frame length; `crates/iris-wire/tests/fuzz_corpus.rs` replays the corpus the same way.
#![no_main]

use bytes::BytesMut;
use iris_wire::{DecodedFrame, FrameCodec};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let Some((&knob, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(knob % 64) + 1;
    let max = 16 + usize::from(knob) * 64;
    let mut codec = FrameCodec::builder().max_frame_length(max).build();
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(DecodedFrame::Frame(frame))) => {
                    // Whatever decodes re-encodes to a frame that decodes to itself.
                    let mut out = BytesMut::new();
                    let mut fresh = FrameCodec::builder().max_frame_length(max).build();
                    fresh
                        .encode(&frame, &mut out)
                        .expect("a decoded frame re-encodes");
                    match fresh.decode(&mut out) {
                        Ok(Some(DecodedFrame::Frame(again))) => assert_eq!(again, frame),
                        other => panic!("re-decoding gave {other:?}"),
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = codec.decode_eof(&mut buf);
});
