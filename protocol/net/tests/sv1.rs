//! The SV1 line codec under tokio_util's FramedRead: lines split at any point, CRLF, and the
//! maximum line length.

use futures::StreamExt;
use strata_net::sv1::Sv1Codec;
use strata_net::NetError;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

#[tokio::test]
async fn lines_arrive_whole_whatever_the_chunking() {
    let (rd, mut wr) = tokio::io::duplex(7);
    let mut lines = FramedRead::new(rd, Sv1Codec::default());
    let writer = tokio::spawn(async move {
        wr.write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\r\n\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"w\",\"x\"]}\n")
            .await
            .unwrap();
    });
    let first = lines.next().await.unwrap().unwrap();
    assert_eq!(
        &first[..],
        b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}"
    );
    let second = lines.next().await.unwrap().unwrap();
    assert!(second.starts_with(b"{\"id\":2"));
    writer.await.unwrap();
    assert!(lines.next().await.is_none());
}

#[tokio::test]
async fn over_long_line_is_an_error() {
    let (rd, mut wr) = tokio::io::duplex(1 << 16);
    let mut lines = FramedRead::new(rd, Sv1Codec::new(100));
    wr.write_all(&[b'a'; 500]).await.unwrap();
    let err = lines.next().await.unwrap().unwrap_err();
    assert!(matches!(err, NetError::Line(_)), "{err}");
}
