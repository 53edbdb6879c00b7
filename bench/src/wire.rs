//! One blocking TCP connection to a broker: size-prefixed framing, request encoding, response
//! decoding and timeouts.
//!
//! Owns: `Connection` and its `FrameReader`, the only code that reads from or writes to a socket.
//! Never: deciding what to send (that is `produce.rs`, `consume.rs`, `client.rs`).
//!
//! Kafka answers requests in order on a connection, so pipelining needs no bookkeeping here beyond
//! correlation ids; callers keep their own queue of what is in flight.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::error::{Error, Result};
use crate::limits::{
    CLIENT_ID, CONNECT_TIMEOUT, POLL_TICK, READ_CHUNK_BYTES, RESPONSE_FRAME_BYTES_MAX,
    RESPONSE_TIMEOUT, WRITE_TIMEOUT,
};

/// A connected socket with its read buffer and correlation id counter.
pub struct Connection {
    stream: TcpStream,
    reader: FrameReader,
    correlation_id_next: i32,
    /// The read timeout last set on the socket, cached so that an unchanged timeout costs no syscall.
    read_timeout: Duration,
    pub peer: String,
}

impl Connection {
    /// Connects to `address` (host:port), with Nagle off: requests are whole frames written at once.
    pub fn connect(address: &str) -> Result<Connection> {
        let resolved = address
            .to_socket_addrs()
            .map_err(|error| Error::context(&format!("cannot resolve {address}"), error))?
            .next()
            .ok_or_else(|| Error::new(format!("{address} resolves to no address")))?;
        let stream = TcpStream::connect_timeout(&resolved, CONNECT_TIMEOUT)
            .map_err(|error| Error::context(&format!("cannot connect to {address}"), error))?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        stream.set_read_timeout(Some(POLL_TICK))?;
        Ok(Connection {
            stream,
            reader: FrameReader::new(),
            correlation_id_next: 1,
            read_timeout: POLL_TICK,
            peer: address.to_string(),
        })
    }

    /// The next correlation id; wraps around, which is harmless since at most a few are in flight.
    pub fn next_correlation_id(&mut self) -> i32 {
        let id = self.correlation_id_next;
        self.correlation_id_next = self.correlation_id_next.wrapping_add(1);
        id
    }

    /// Writes a whole request frame (blocking, bounded by `WRITE_TIMEOUT`).
    pub fn write_all(&mut self, frame: &[u8]) -> Result<()> {
        self.stream
            .write_all(frame)
            .map_err(|error| Error::context(&format!("write to {} failed", self.peer), error))
    }

    /// Sets how long the next `poll_frame` may block. Zero is not a valid socket timeout, so it is
    /// raised to one microsecond.
    pub fn set_wait(&mut self, wait: Duration) -> Result<()> {
        let wait = wait.max(Duration::from_micros(1));
        if wait != self.read_timeout {
            self.stream.set_read_timeout(Some(wait))?;
            self.read_timeout = wait;
        }
        Ok(())
    }

    /// Returns a complete response frame (without its size prefix) if one is buffered or arrives
    /// within the current wait; `None` if the wait passed first.
    pub fn poll_frame(&mut self) -> Result<Option<Bytes>> {
        if let Some(frame) = self.reader.take_frame()? {
            return Ok(Some(frame));
        }
        if !self.reader.read_some(&mut self.stream, &self.peer)? {
            return Ok(None);
        }
        self.reader.take_frame()
    }

    /// Blocks until a frame arrives or `deadline` passes.
    pub fn wait_frame(&mut self, deadline: Instant) -> Result<Bytes> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::new(format!("{} did not answer in time", self.peer)));
            }
            self.set_wait((deadline - now).min(POLL_TICK))?;
            if let Some(frame) = self.poll_frame()? {
                return Ok(frame);
            }
        }
    }

    /// Sends one request and waits for its answer. Only for the control plane: nothing else may be
    /// in flight on this connection, since the first frame back is taken as the answer.
    pub fn call<R: Request>(&mut self, version: i16, body: &R) -> Result<R::Response> {
        let correlation_id = self.next_correlation_id();
        let frame = encode_request(version, correlation_id, body)?;
        self.write_all(&frame)?;
        let answer = self.wait_frame(Instant::now() + RESPONSE_TIMEOUT)?;
        decode_response::<R::Response>(answer, version, correlation_id)
    }
}

/// Encodes a size-prefixed request frame: header (in the header version this API version uses)
/// followed by the body.
pub fn encode_request<R: Request>(version: i16, correlation_id: i32, body: &R) -> Result<BytesMut> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    header
        .encode(&mut frame, R::header_version(version))
        .map_err(|error| Error::context("encoding a request header", error))?;
    body.encode(&mut frame, version)
        .map_err(|error| Error::context("encoding a request", error))?;
    let size =
        i32::try_from(frame.len() - 4).map_err(|_| Error::new("request larger than 2 GiB"))?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

/// Decodes a response frame, checking that it answers `correlation_id`.
pub fn decode_response<R: Decodable + HeaderVersion>(
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<R> {
    let header = ResponseHeader::decode(&mut frame, R::header_version(version))
        .map_err(|error| Error::context("decoding a response header", error))?;
    if header.correlation_id != correlation_id {
        return Err(Error::new(format!(
            "response correlation id {} does not match request {correlation_id}",
            header.correlation_id
        )));
    }
    R::decode(&mut frame, version).map_err(|error| Error::context("decoding a response", error))
}

/// A frame too large for the ring buffer, being read straight into its own allocation.
struct LargeFrame {
    frame: Vec<u8>,
    filled: usize,
}

/// Splits the byte stream into frames. Small frames (produce answers) are cut out of a fixed ring
/// buffer; large ones (fetch answers) get an allocation of exactly their size, so they are never
/// copied or zero-filled twice.
pub struct FrameReader {
    ring: Vec<u8>,
    start: usize,
    end: usize,
    large: Option<LargeFrame>,
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader {
            ring: vec![0; READ_CHUNK_BYTES],
            start: 0,
            end: 0,
            large: None,
        }
    }

    /// Returns the next complete frame if all of it has been read.
    pub fn take_frame(&mut self) -> Result<Option<Bytes>> {
        if let Some(large) = &self.large {
            if large.filled < large.frame.len() {
                return Ok(None);
            }
            return Ok(self.large.take().map(|large| Bytes::from(large.frame)));
        }
        let buffered = self.end - self.start;
        if buffered < 4 {
            return Ok(None);
        }
        let size = frame_size(&self.ring[self.start..self.start + 4])?;
        if 4 + size > self.ring.len() {
            // Move what we already have of this frame into its own allocation.
            let mut frame = vec![0; size];
            let have = buffered - 4;
            frame[..have].copy_from_slice(&self.ring[self.start + 4..self.end]);
            self.start = 0;
            self.end = 0;
            self.large = Some(LargeFrame {
                frame,
                filled: have,
            });
            return Ok(None);
        }
        if buffered < 4 + size {
            return Ok(None);
        }
        let body_start = self.start + 4;
        let frame = Bytes::copy_from_slice(&self.ring[body_start..body_start + size]);
        self.start = body_start + size;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(frame))
    }

    /// One `read` call; false if the socket's timeout passed with nothing to read.
    pub fn read_some(&mut self, source: &mut impl Read, peer: &str) -> Result<bool> {
        let target = match &mut self.large {
            Some(large) => &mut large.frame[large.filled..],
            None => {
                if self.end == self.ring.len() {
                    self.compact();
                }
                &mut self.ring[self.end..]
            }
        };
        let count = match source.read(target) {
            Ok(0) => return Err(Error::new(format!("{peer} closed the connection"))),
            Ok(count) => count,
            Err(error) => match error.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted => {
                    return Ok(false)
                }
                _ => return Err(Error::context(&format!("read from {peer} failed"), error)),
            },
        };
        match &mut self.large {
            Some(large) => large.filled += count,
            None => self.end += count,
        }
        Ok(true)
    }

    /// Moves the unread bytes to the front of the ring to make room at the end.
    fn compact(&mut self) {
        self.ring.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }
}

/// Reads and checks a frame's size prefix. A response holds at least a correlation id.
fn frame_size(prefix: &[u8]) -> Result<usize> {
    let mut size_bytes = [0u8; 4];
    size_bytes.copy_from_slice(prefix);
    let size = i32::from_be_bytes(size_bytes);
    match usize::try_from(size) {
        Ok(size) if (4..=RESPONSE_FRAME_BYTES_MAX).contains(&size) => Ok(size),
        _ => Err(Error::new(format!(
            "response frame size {size} is outside 4..={RESPONSE_FRAME_BYTES_MAX}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes a few at a time, like a socket that delivers partial reads.
    struct Trickle {
        bytes: Vec<u8>,
        position: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, target: &mut [u8]) -> std::io::Result<usize> {
            if self.position == self.bytes.len() {
                return Err(std::io::Error::new(ErrorKind::WouldBlock, "drained"));
            }
            let count = self
                .step
                .min(target.len())
                .min(self.bytes.len() - self.position);
            target[..count].copy_from_slice(&self.bytes[self.position..self.position + count]);
            self.position += count;
            Ok(count)
        }
    }

    fn framed(bodies: &[Vec<u8>]) -> Vec<u8> {
        let mut stream = Vec::new();
        for body in bodies {
            stream.extend_from_slice(&(body.len() as i32).to_be_bytes());
            stream.extend_from_slice(body);
        }
        stream
    }

    fn read_all(stream: Vec<u8>, step: usize) -> Vec<Bytes> {
        let mut source = Trickle {
            bytes: stream,
            position: 0,
            step,
        };
        let mut reader = FrameReader::new();
        let mut frames = Vec::new();
        loop {
            while let Some(frame) = reader.take_frame().expect("valid frames") {
                frames.push(frame);
            }
            if !reader.read_some(&mut source, "test").expect("no error") {
                return frames;
            }
        }
    }

    #[test]
    fn splits_small_and_large_frames_across_partial_reads() {
        let bodies = vec![
            vec![1u8; 10],
            vec![2u8; READ_CHUNK_BYTES + 17],
            vec![3u8; 4],
            vec![4u8; READ_CHUNK_BYTES - 4],
            vec![5u8; 100],
        ];
        for step in [1, 7, 4096, 3 * READ_CHUNK_BYTES] {
            let frames = read_all(framed(&bodies), step);
            assert_eq!(frames.len(), bodies.len(), "step {step}");
            for (frame, body) in frames.iter().zip(&bodies) {
                assert_eq!(&frame[..], &body[..], "step {step}");
            }
        }
    }

    #[test]
    fn rejects_absurd_frame_sizes() {
        let mut reader = FrameReader::new();
        let mut source = Trickle {
            bytes: (-5i32).to_be_bytes().to_vec(),
            position: 0,
            step: 4,
        };
        assert!(reader.read_some(&mut source, "test").expect("read"));
        assert!(reader.take_frame().is_err());
        let huge = (RESPONSE_FRAME_BYTES_MAX as i32 + 1).to_be_bytes();
        assert!(frame_size(&huge).is_err());
        assert!(frame_size(&3i32.to_be_bytes()).is_err());
        assert_eq!(frame_size(&4i32.to_be_bytes()).expect("valid"), 4);
    }
}
