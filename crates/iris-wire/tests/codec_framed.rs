//! The codec over a real byte stream with `Framed`: a rejected frame is answered with an error
//! frame and the connection keeps serving.

use bytes::{BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use iris_wire::{DecodedFrame, Frame, FrameCodec, error_code};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::Framed;

/// A minimal connection loop: answers pings, answers rejections with an error frame.
async fn serve(io: tokio::io::DuplexStream) {
    let mut framed = Framed::new(io, FrameCodec::builder().max_frame_length(64).build());
    while let Some(item) = framed.next().await {
        let reply = match item {
            Ok(DecodedFrame::Frame(Frame::Ping { nonce })) => Frame::Pong { nonce },
            Ok(DecodedFrame::Frame(other)) => Frame::Error {
                code: 0,
                message: format!("unexpected {other:?}"),
            },
            Ok(DecodedFrame::Rejected(r)) => r.to_error_frame(),
            Ok(_) => continue,
            Err(e) if e.is_fatal() => return,
            Err(_) => continue,
        };
        if framed.send(reply).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn rejections_are_answered_and_the_connection_continues() {
    let (client, server) = tokio::io::duplex(256);
    let server = tokio::spawn(serve(server));
    let (mut read, mut write) = tokio::io::split(client);

    let mut raw = BytesMut::new();
    // An oversized frame (1000 > 64), streamed through a 256-byte pipe.
    raw.put_u32(1000);
    raw.put_bytes(0xEE, 1000);
    // An unknown type.
    raw.put_slice(&[0, 0, 0, 2, 0x7F, 0]);
    // A malformed ping.
    raw.put_slice(&[0, 0, 0, 2, 0x02, 0]);
    // A good ping.
    raw.put_slice(&[0, 0, 0, 9, 0x02, 0, 0, 0, 0, 0, 0, 0, 42]);

    let writer = tokio::spawn(async move {
        write.write_all(&raw).await.unwrap();
        write.shutdown().await.unwrap();
    });
    let mut replies = tokio_util::codec::FramedRead::new(&mut read, FrameCodec::new());
    let mut got = Vec::new();
    while let Some(item) = replies.next().await {
        got.push(item.unwrap().into_result().unwrap());
    }
    writer.await.unwrap();
    server.await.unwrap();

    let codes: Vec<u16> = got
        .iter()
        .filter_map(|f| match f {
            Frame::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        [
            error_code::OVERSIZED,
            error_code::UNKNOWN_TYPE,
            error_code::MALFORMED
        ]
    );
    assert_eq!(got.last(), Some(&Frame::Pong { nonce: 42 }));
    assert_eq!(got.len(), 4);
}

#[tokio::test]
async fn zero_length_prefix_ends_the_stream_with_a_fatal_error() {
    let (client, server) = tokio::io::duplex(64);
    let mut framed = Framed::new(server, FrameCodec::new());
    let (_read, mut write) = tokio::io::split(client);
    write.write_all(&[0, 0, 0, 0]).await.unwrap();
    let err = framed.next().await.unwrap().unwrap_err();
    assert!(err.is_fatal());
}
