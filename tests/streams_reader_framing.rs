//! `StreamReader` on its own, fed from another task: framed reads over data that arrives in
//! small pieces, the limit (an error that keeps the bytes), early EOF (an error that carries
//! them), a connection error reported after the data that preceded it, cancelled reads that
//! lose nothing, and the futures-io traits.

mod support;

use std::io;
use std::time::Duration;

use futures_lite::AsyncBufReadExt as _;
use ringloop::streams::{ReadError, StreamReader};
use ringloop::{spawn, time, yield_now};

/// How long one test may run before its watchdog aborts the process.
const TEST_LIMIT: Duration = Duration::from_secs(20);

/// Feeds `data` to `reader` from a spawned task, `piece` bytes per loop turn, then EOF.
fn feed_in_pieces(reader: &StreamReader, data: Vec<u8>, piece: usize) {
    let feeder = reader.feeder();
    spawn(async move {
        for chunk in data.chunks(piece) {
            feeder.feed_data(chunk);
            yield_now().await;
        }
        feeder.feed_eof();
    });
}

both_backends! {
    /// Lines and `\r\n`-framed records that arrive one or two bytes at a time come out whole,
    /// in order, and the last unterminated line comes out at EOF.
    fn framed_reads_reassemble_small_pieces(rt) {
        let _w = support::watchdog(TEST_LIMIT, "framed_reads_reassemble_small_pieces");
        rt.block_on(async {
            let mut reader = StreamReader::new();
            feed_in_pieces(&reader, b"alpha\nbeta\r\ngamma\r\ntail".to_vec(), 1);
            assert_eq!(reader.readline().await.unwrap(), b"alpha\n");
            assert_eq!(reader.readuntil(b"\r\n").await.unwrap(), b"beta\r\n");
            assert_eq!(reader.readuntil(b"\r\n").await.unwrap(), b"gamma\r\n");
            assert_eq!(reader.readline().await.unwrap(), b"tail");
            assert_eq!(reader.readline().await.unwrap(), b"");
            assert!(reader.at_eof());

            let mut reader = StreamReader::new();
            let lines: Vec<u8> = (0..200).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
            feed_in_pieces(&reader, lines, 2);
            for i in 0..200 {
                assert_eq!(reader.readline().await.unwrap(), format!("line {i}\n").as_bytes());
            }
            assert_eq!(reader.readline().await.unwrap(), b"");
        });
    }

    /// A line longer than the limit fails with `LimitOverrun`, and every byte of it is still
    /// in the reader; a line of exactly the limit is accepted.
    fn line_over_limit_keeps_its_bytes(rt) {
        let _w = support::watchdog(TEST_LIMIT, "line_over_limit_keeps_its_bytes");
        rt.block_on(async {
            let mut reader = StreamReader::with_limit(8);
            let long = b"0123456789abcdef\n";
            feed_in_pieces(&reader, [&long[..], b"12345678\n"].concat(), 3);
            match reader.readline().await {
                Err(ReadError::LimitOverrun(e)) => {
                    assert_eq!(e.limit, 8);
                    assert!(e.consumed > 8, "consumed {} is past the limit", e.consumed);
                    let io_err: io::Error = ReadError::LimitOverrun(e).into();
                    assert_eq!(io_err.kind(), io::ErrorKind::InvalidData);
                }
                other => panic!("want LimitOverrun, got {other:?}"),
            }
            // Nothing was consumed: the whole long line reads back.
            assert_eq!(reader.readexactly(long.len()).await.unwrap(), long);
            assert_eq!(reader.readline().await.unwrap(), b"12345678\n");
        });
    }

    /// `readexactly` at an early EOF fails with `Incomplete`, carrying the bytes that arrived
    /// and the count that was expected; the reader is then at EOF.
    fn readexactly_early_eof_carries_partial(rt) {
        let _w = support::watchdog(TEST_LIMIT, "readexactly_early_eof_carries_partial");
        rt.block_on(async {
            let mut reader = StreamReader::new();
            feed_in_pieces(&reader, b"0123456789".to_vec(), 4);
            assert_eq!(reader.readexactly(3).await.unwrap(), b"012");
            match reader.readexactly(100).await {
                Err(ReadError::Incomplete(e)) => {
                    assert_eq!(e.partial, b"3456789");
                    assert_eq!(e.expected, Some(100));
                }
                other => panic!("want Incomplete, got {other:?}"),
            }
            assert!(reader.at_eof());
            match reader.readuntil(b"\n").await {
                Err(ReadError::Incomplete(e)) => assert!(e.partial.is_empty() && e.expected.is_none()),
                other => panic!("want an empty Incomplete, got {other:?}"),
            }
        });
    }

    /// After `set_exception`, reads return the bytes that arrived before the error, then the
    /// error (with its errno), and keep returning it.
    fn exception_after_buffered_data(rt) {
        let _w = support::watchdog(TEST_LIMIT, "exception_after_buffered_data");
        rt.block_on(async {
            let mut reader = StreamReader::new();
            let feeder = reader.feeder();
            spawn(async move {
                feeder.feed_data(b"last words\npart");
                yield_now().await;
                feeder.set_exception(io::Error::from_raw_os_error(libc::ECONNRESET));
            });
            assert_eq!(reader.readline().await.unwrap(), b"last words\n");
            match reader.readline().await {
                Err(ReadError::Io(e)) => assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET)),
                other => panic!("want the reset, got {other:?}"),
            }
            assert_eq!(reader.read(100).await.unwrap(), b"part");
            for _ in 0..2 {
                let e = reader.read(100).await.unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
            }
        });
    }

    /// A `readline` that times out consumes nothing: bytes that arrived before the timeout
    /// are part of the line the next `readline` returns.
    fn cancelled_readline_loses_nothing(rt) {
        let _w = support::watchdog(TEST_LIMIT, "cancelled_readline_loses_nothing");
        rt.block_on(async {
            let mut reader = StreamReader::new();
            reader.feed_data(b"half ");
            let timed_out = time::timeout(Duration::from_millis(5), reader.readline()).await;
            assert!(timed_out.is_err(), "no newline yet: {timed_out:?}");
            reader.feed_data(b"and half\n");
            assert_eq!(reader.readline().await.unwrap(), b"half and half\n");
        });
    }

    /// The futures-io traits see the same bytes: `AsyncBufRead::read_line` gets whole lines
    /// from small pieces, `AsyncRead::read_to_end` the rest up to EOF.
    fn futures_io_traits_read_the_stream(rt) {
        let _w = support::watchdog(TEST_LIMIT, "futures_io_traits_read_the_stream");
        rt.block_on(async {
            let mut reader = StreamReader::new();
            let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
            let data = [&b"first line\nsecond\n"[..], &payload].concat();
            feed_in_pieces(&reader, data, 7);
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            assert_eq!(line, "first line\n");
            line.clear();
            reader.read_line(&mut line).await.unwrap();
            assert_eq!(line, "second\n");
            let mut rest = Vec::new();
            futures_lite::AsyncReadExt::read_to_end(&mut reader, &mut rest).await.unwrap();
            support::assert_bytes_eq("read_to_end", &rest, &payload);
            assert!(reader.at_eof());
        });
    }
}
