//! Replays the committed cargo-fuzz corpus (`fuzz/corpus/decode`) through the decoder, the way the
//! `decode` fuzz target does, so the corpus is exercised by every `cargo test`.

use std::path::Path;

use bytes::BytesMut;
use iris_wire::{DecodedFrame, FrameCodec};
use tokio_util::codec::Decoder;

/// Mirror of `fuzz/fuzz_targets/decode.rs`: the first byte picks the chunk size and the max frame
/// length; the rest is fed to the decoder in chunks. Returns the number of well-formed frames.
fn run(data: &[u8]) -> usize {
    let Some((&knob, data)) = data.split_first() else {
        return 0;
    };
    let chunk = usize::from(knob % 64) + 1;
    let max = 16 + usize::from(knob) * 64;
    let mut codec = FrameCodec::builder().max_frame_length(max).build();
    let mut buf = BytesMut::new();
    let mut items = 0;
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(DecodedFrame::Frame(_))) => items += 1,
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return items,
            }
        }
    }
    let _ = codec.decode_eof(&mut buf);
    items
}

#[test]
fn corpus_replays_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode");
    let mut files = 0;
    let mut items = 0;
    for entry in std::fs::read_dir(&dir).expect("the fuzz corpus is committed") {
        let path = entry.unwrap().path();
        if path.is_file() {
            items += run(&std::fs::read(&path).unwrap());
            files += 1;
        }
    }
    assert!(
        files >= 5,
        "corpus at {} has only {files} files",
        dir.display()
    );
    // The seeds built from valid frames decode to something.
    assert!(items > 0);
}
