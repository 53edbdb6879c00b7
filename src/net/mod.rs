//! The network edge of one shard: its SO_REUSEPORT listener, size-prefixed framing, one task per
//! connection.
//!
//! Owns: accepting (bounded by a per-shard connection semaphore), handing a connection to the shard
//! that owns its partitions and serving those handed to this one (`affinity`), reading whole frames
//! into pool buffers after checking the size prefix against `FRAME_BYTES_MAX`, writing responses in
//! request order (a response with spliced record sets in one vectored `sendmsg`, the records straight
//! from the pool buffers that hold them).
//! Never: decoding request bodies or touching partitions (that is `handlers`).
//!
//! A connection runs one request at a time, as Kafka brokers do: a client may pipeline requests, and
//! answering them strictly in order is what the protocol requires.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod affinity;

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use bytes::{BufMut, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::LocalReceiver;
use glommio::net::{TcpListener, TcpStream};
use glommio::sync::{Semaphore, StaticPermit};
use log::{debug, info, warn};
use shards::mesh::ShardRequest;
use shards::pool::PoolBuf;
use shards::ShardId;

use crate::config::Config;
use crate::handlers::{self, BrokerContext, Outcome, Splices};
use crate::limits::{FRAME_BYTES_MAX, FRAME_BYTES_MIN};
use affinity::Affinity;

/// A connection's response buffer keeps its capacity between requests; beyond this it is shrunk back
/// so one large fetch does not pin memory for the life of an idle connection.
const WRITE_BUFFER_BYTES_KEPT_MAX: usize = 1024 * 1024;

/// Slices one `sendmsg` may carry: Linux's `UIO_MAXIOV`. A response with more goes out in several calls.
const IOVECS_PER_SEND_MAX: usize = 1024;

/// Binds the Kafka port on this shard. glommio sets SO_REUSEPORT, so every shard binds the same address
/// and the kernel spreads new connections over them.
pub fn bind(config: &Config) -> io::Result<TcpListener> {
    TcpListener::bind((config.listen, config.port))
        .map_err(|error| io::Error::other(error.to_string()))
}

/// Accepts connections until the shard stops, and serves those other shards hand over.
pub async fn serve(listener: TcpListener, context: Rc<BrokerContext>, connections_max: usize) {
    let permits = Rc::new(Semaphore::new(connections_max as u64));
    if let Some(adopted) = context.shard.take_adopted_connections() {
        glommio::spawn_local(adopt(adopted, permits.clone(), context.clone())).detach();
    }
    loop {
        let accepted = unless_stopped(&context, async {
            let permit = permits.acquire_static_permit(1).await.ok()?;
            Some((listener.accept().await, permit))
        })
        .await;
        let Some((stream, permit)) = accepted else {
            break;
        };
        match stream {
            Ok(stream) => spawn_connection(stream, permit, context.clone()),
            Err(error) => warn!("{}: accept failed: {error}", context.shard.id),
        }
    }
}

/// Serves the connections other shards hand to this one (`ShardRequest::AdoptConnection`), each under a
/// permit of this shard's connection bound, until the shard stops.
async fn adopt(
    adopted: LocalReceiver<OwnedFd>,
    permits: Rc<Semaphore>,
    context: Rc<BrokerContext>,
) {
    loop {
        let next = unless_stopped(&context, async {
            let fd = adopted.recv().await?;
            let permit = permits.acquire_static_permit(1).await.ok()?;
            Some((fd, permit))
        })
        .await;
        let Some((fd, permit)) = next else {
            break;
        };
        // SAFETY: the descriptor is an open TCP socket (another shard's accepted connection, duplicated
        // in `hand_over`), and `into_raw_fd` passes its only owner to the stream.
        let stream = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
        spawn_connection(stream, permit, context.clone());
    }
}

/// `work`'s outcome, or `None` as soon as the shard stops.
async fn unless_stopped<T>(
    context: &BrokerContext,
    work: impl std::future::Future<Output = Option<T>>,
) -> Option<T> {
    let stopped = async {
        context.shard.wait_stopped().await;
        None
    };
    futures_lite::future::or(work, stopped).await
}

fn spawn_connection(stream: TcpStream, permit: StaticPermit, context: Rc<BrokerContext>) {
    glommio::spawn_local(async move {
        let peer = stream
            .peer_addr()
            .map(|address| address.to_string())
            .unwrap_or_default();
        // What group descriptions show as a member's host: the address without the port.
        let host = stream
            .peer_addr()
            .map(|address| address.ip().to_string())
            .unwrap_or_default();
        debug!("{}: connection from {peer}", context.shard.id);
        match connection(stream, &context, &host).await {
            Ok(Ended::Closed) => debug!("{}: {peer} closed", context.shard.id),
            Ok(Ended::Moved(target)) => debug!("{}: {peer} moved to {target}", context.shard.id),
            Err(error) => info!(
                "{}: closing connection from {peer}: {error}",
                context.shard.id
            ),
        }
        drop(permit);
    })
    .detach();
}

/// How a connection left this shard without an error.
enum Ended {
    /// The client closed it, or the shard is stopping.
    Closed,
    /// Handed to the shard that owns its partitions (`affinity`).
    Moved(ShardId),
}

async fn connection(
    mut stream: TcpStream,
    context: &BrokerContext,
    host: &str,
) -> io::Result<Ended> {
    let affinity = Affinity::new(context.shard.id, context.move_connections);
    let peer = handlers::Peer {
        address: host,
        affinity: &affinity,
    };
    stream
        .set_nodelay(true)
        .map_err(|error| io::Error::other(error.to_string()))?;
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut splices = Splices::default();
    loop {
        let mut prefix = [0u8; 4];
        match stream.read_exact(&mut prefix).await {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(Ended::Closed),
            Err(error) => return Err(error),
        }
        let size = i32::from_be_bytes(prefix);
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if !(FRAME_BYTES_MIN..=FRAME_BYTES_MAX).contains(&size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame size {size} out of bounds"),
            ));
        }
        let mut frame = PoolBuf::acquire(size).await;
        stream.read_exact(&mut frame).await?;
        out.clear();
        if out.capacity() > WRITE_BUFFER_BYTES_KEPT_MAX {
            out = BytesMut::with_capacity(64 * 1024);
        }
        out.put_i32(0);
        splices.clear();
        let outcome = handlers::handle(context, &peer, frame.into_bytes(), &mut out, &mut splices);
        match outcome.await {
            Outcome::Respond => {
                let length = i32::try_from(out.len() - 4 + splices.bytes()).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "response too large")
                })?;
                if let Some(prefix) = out.get_mut(..4) {
                    prefix.copy_from_slice(&length.to_be_bytes());
                }
                match splices.is_empty() {
                    true => stream.write_all(&out).await?,
                    false => write_spliced(&mut stream, &out, &splices).await?,
                }
                // The spliced buffers go home now, not when the next request arrives.
                splices.clear();
            }
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, reason));
            }
        }
        if context.shard.is_stopped() {
            return Ok(Ended::Closed);
        }
        // Every request read so far is answered and nothing more is read: the connection can go.
        if let Some(target) = affinity.move_to() {
            hand_over(stream, context, target).await?;
            return Ok(Ended::Moved(target));
        }
        // Take turns with the shard's other tasks: glommio reads a readable socket without waiting, so
        // a connection whose client keeps it fed would otherwise never give the core up, and a request
        // of another connection whose answer has arrived (`Shard::drain_mesh`) would wait behind it.
        futures_lite::future::yield_now().await;
    }
}

/// Moves the connection to `target`: a duplicate of its descriptor goes over the mesh, and dropping
/// `stream` closes this shard's descriptor (and any readiness poll glommio had on it) while the socket
/// stays open. Requests the client has already sent wait in the socket for the new shard to read.
async fn hand_over(stream: TcpStream, context: &BrokerContext, target: ShardId) -> io::Result<()> {
    // SAFETY: `stream` owns this descriptor and outlives the borrow, which ends with the duplicate.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) }.try_clone_to_owned()?;
    drop(stream);
    context
        .shard
        .call(target, ShardRequest::AdoptConnection(fd))
        .await
        .map(|_| ())
        .map_err(|error| io::Error::other(format!("moving to {target}: {error}")))
}

/// Writes `head` with the spliced byte strings interleaved at their positions. While the socket buffer
/// has room this is one `sendmsg` per `IOVECS_PER_SEND_MAX` slices; when it is full, glommio's write
/// waits for room and sends part of the current slice, and the vectored sends resume after it.
async fn write_spliced(stream: &mut TcpStream, head: &[u8], splices: &Splices) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(2 * splices.parts().len() + 1);
    let mut from = 0;
    for (position, bytes) in splices.parts() {
        let piece = head.get(from..*position).ok_or_else(|| {
            io::Error::other(format!(
                "splice at {position} outside a {}-byte head",
                head.len()
            ))
        })?;
        slices.extend([IoSlice::new(piece), IoSlice::new(bytes)]);
        from = *position;
    }
    slices.push(IoSlice::new(head.get(from..).unwrap_or_default()));
    slices.retain(|slice| !slice.is_empty());
    let fd = stream.as_raw_fd();
    let mut remaining = &mut slices[..];
    // Bounded: every pass sends at least one byte or returns an error.
    while !remaining.is_empty() {
        let batch = remaining.get(..IOVECS_PER_SEND_MAX).unwrap_or(remaining);
        let sent = match send_vectored(fd, batch) {
            Ok(sent) => sent,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                let first: &[u8] = remaining.first().map_or(&[], |slice| slice);
                stream.write(first).await?
            }
            Err(error) => return Err(error),
        };
        if sent == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        IoSlice::advance_slices(&mut remaining, sent);
    }
    Ok(())
}

/// One non-blocking `sendmsg` of `slices` (`MSG_DONTWAIT`: the reactor must never block on a full socket
/// buffer, whatever mode glommio left the socket in; `MSG_NOSIGNAL`: a closed peer is an error, not a
/// SIGPIPE).
fn send_vectored(fd: RawFd, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    assert!(slices.len() <= IOVECS_PER_SEND_MAX);
    // SAFETY: an all-zero `msghdr` is valid (no name, no control data, null iovec). The iovec pointer
    // and count describe `slices`, which `IoSlice` guarantees to be ABI-compatible with `iovec` on Unix,
    // and they outlive the call; the kernel only reads them.
    let sent = unsafe {
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = slices.as_ptr() as *mut libc::iovec;
        message.msg_iovlen = slices.len() as _;
        libc::sendmsg(fd, &message, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    };
    match usize::try_from(sent) {
        Ok(sent) => Ok(sent),
        Err(_) => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use std::io::Read;

    /// More slices than one `sendmsg` takes and more bytes than the socket buffers hold, so the write
    /// goes out in several calls and waits for room; the reader must see exactly the interleaving.
    #[test]
    fn spliced_writes_arrive_in_order_across_full_socket_buffers() {
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            let mut head = BytesMut::new();
            let mut splices = Splices::default();
            let mut expected = Vec::new();
            for index in 0..1500usize {
                let field = [(index % 251) as u8; 7];
                head.extend_from_slice(&field);
                expected.extend_from_slice(&field);
                // Sizes from 1 byte to ~12 KiB, ~9 MB in all.
                let records: Bytes = (0..1 + index * 37 % 12_000)
                    .map(|byte| (byte * 13 + index) as u8)
                    .collect();
                expected.extend_from_slice(&records);
                splices.push(&head, records);
            }
            head.extend_from_slice(b"tail");
            expected.extend_from_slice(b"tail");
            let reader = std::thread::spawn(move || {
                let mut client = std::net::TcpStream::connect(address).unwrap();
                let mut received = Vec::new();
                client.read_to_end(&mut received).unwrap();
                received
            });
            let mut stream = listener.accept().await.unwrap();
            write_spliced(&mut stream, &head, &splices).await.unwrap();
            stream.close().await.unwrap();
            let received = reader.join().unwrap();
            assert_eq!(received.len(), expected.len());
            assert!(received == expected);
        });
    }
}
