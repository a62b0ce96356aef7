//! HTTP over a Unix domain socket (`unix:///run/vault/proxy.sock`, as the
//! Vault CLI and Vault/OpenBao Proxy listeners accept): a connector for
//! `ureq` that opens the socket whatever host the URL names, so requests go
//! to `http://localhost/...` and `ureq` does the HTTP.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
};

/// The URL prefix of Unix socket addresses.
pub const SCHEME: &str = "unix://";

/// The socket path of a `unix://PATH` address, else `None`.
pub fn socket_path(address: &str) -> Option<PathBuf> {
    address
        .strip_prefix(SCHEME)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// Opens the socket at `path` for every connection.
#[derive(Debug)]
pub struct UnixConnector {
    /// The socket.
    pub path: PathBuf,
}

impl Connector<()> for UnixConnector {
    type Out = UnixTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _: Option<()>,
    ) -> Result<Option<UnixTransport>, ureq::Error> {
        // Bounded by connect_timeout: a listener that stopped accepting
        // keeps a plain connect waiting for as long as its backlog is full.
        let timeout = details.timeout;
        let stream = crate::sys::connect_unix(&self.path, bound(timeout)?)
            .map_err(|e| io_error(e, timeout))?;
        let config = details.config;
        Ok(Some(UnixTransport {
            stream,
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
        }))
    }
}

/// One connection over the socket.
#[derive(Debug)]
pub struct UnixTransport {
    stream: UnixStream,
    buffers: LazyBuffers,
}

/// The bound `timeout` sets on one read or write; `Err` when already spent.
fn bound(timeout: NextTimeout) -> Result<Option<Duration>, ureq::Error> {
    if timeout.after.is_zero() {
        return Err(ureq::Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|d| *d))
}

fn io_error(e: std::io::Error, timeout: NextTimeout) -> ureq::Error {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            ureq::Error::Timeout(timeout.reason)
        }
        _ => ureq::Error::Io(e),
    }
}

impl Transport for UnixTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        self.stream.set_write_timeout(bound(timeout)?)?;
        let output = &self.buffers.output()[..amount];
        self.stream
            .write_all(output)
            .map_err(|e| io_error(e, timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        self.stream.set_read_timeout(bound(timeout)?)?;
        let input = self.buffers.input_append_buf();
        // A read interrupted by a signal is tried again, a bounded number
        // of times.
        let mut result = self.stream.read(input);
        for _ in 0..16 {
            match &result {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    result = self.stream.read(input);
                }
                _ => break,
            }
        }
        let amount = result.map_err(|e| io_error(e, timeout))?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // Open when nothing is waiting to be read and the peer has not
        // closed: a read that would block.
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8];
        let open = matches!(
            self.stream.read(&mut byte),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        open && self.stream.set_nonblocking(false).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unix_addresses_with_a_path_are_sockets() {
        assert_eq!(
            socket_path("unix:///run/proxy.sock"),
            Some(PathBuf::from("/run/proxy.sock"))
        );
        assert_eq!(socket_path("unix://"), None);
        assert_eq!(socket_path("http://127.0.0.1:8200"), None);
    }
}
