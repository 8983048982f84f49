//! Socket options the connection shells set.

use std::os::fd::AsFd;

/// Acknowledges at once what was read from `socket` (Linux `TCP_QUICKACK`; elsewhere
/// nothing). For a message that gets no reply, such as `PushSolution`: the kernel would
/// otherwise delay the ACK (40 ms and more), and a peer that leaves Nagle's algorithm on
/// (no `TCP_NODELAY`, as SRI's applications) holds its next small message until that ACK
/// comes. An error is returned for the caller to ignore or log; nothing depends on it.
pub fn ack_now(socket: &impl AsFd) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        socket2::SockRef::from(socket).set_tcp_quickack(true)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quickack_is_set_on_a_connected_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        ack_now(&server).unwrap();
        #[cfg(target_os = "linux")]
        assert!(socket2::SockRef::from(&server).tcp_quickack().unwrap());
        drop(client);
    }
}
