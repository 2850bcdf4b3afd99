//! TlsConn over real sockets.

use std::io::{Read, Write};

use rustls::ClientConnection;
use rustls::pki_types::ServerName;

use crate::tls::engine::tests::{NAME, client_config, server};

/// The session state lives behind a pointer: a connection task (which the spawn wrapper stores
/// twice) carries only a few words for it.
#[test]
fn tls_conn_is_a_few_words() {
    let size = std::mem::size_of::<super::TlsConn>();
    assert!(size <= 64, "TlsConn is {size} bytes");
}

/// [`super::TlsConn`] over a real socket: handshake, SNI, a request read, a response flushed,
/// end of stream at the client's close_notify, then close_notify back.
#[test]
fn tls_conn_serves_a_real_client() {
    use super::TlsConn;
    use crate::buf::LazyBuf;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        let name = ServerName::try_from(NAME).unwrap();
        let conn = ClientConnection::new(client_config(&rustls::version::TLS13), name).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut got = vec![0; 5];
        tls.read_exact(&mut got).unwrap();
        tls.conn.send_close_notify();
        tls.flush().unwrap();
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).unwrap();
        (got, rest)
    });
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (sock, _) = listener.accept().unwrap();
        let tcp = compio::net::TcpStream::from_std(sock).unwrap();
        let conn = TlsConn::new(tcp, Some(server().0.clone())).unwrap();
        let mut inbuf = LazyBuf::new(64);
        conn.handshake(&mut inbuf).await.unwrap();
        conn.with_server_name(|name| assert_eq!(name, Some(NAME)));
        while inbuf.bytes().len() < 18 {
            assert!(conn.read_plain(&mut inbuf, true).await.unwrap() > 0);
        }
        assert_eq!(inbuf.bytes(), b"GET / HTTP/1.1\r\n\r\n");
        conn.write_plain(b"hello").unwrap();
        conn.flush().await.unwrap();
        assert_eq!(conn.read_plain(&mut inbuf, true).await.unwrap(), 0);
        assert_eq!(conn.read_plain(&mut inbuf, true).await.unwrap(), 0);
        conn.close().await;
    });
    let (got, rest) = client.join().unwrap();
    assert_eq!(got, b"hello");
    assert!(rest.is_empty());
}

/// Bytes read off the socket before the session started (what followed a PROXY header: part
/// or all of the ClientHello) are fed first, and the handshake goes on from them.
#[test]
fn bytes_received_before_the_session_are_fed_to_it() {
    use super::TlsConn;
    use crate::buf::LazyBuf;

    // `whole`: the ClientHello's whole first record; else its first 10 bytes.
    for whole in [false, true] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let tcp = std::net::TcpStream::connect(addr).unwrap();
            let name = ServerName::try_from(NAME).unwrap();
            let conn = ClientConnection::new(client_config(&rustls::version::TLS13), name).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            tls.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
            let mut got = vec![0; 5];
            tls.read_exact(&mut got).unwrap();
            got
        });
        let (mut sock, _) = listener.accept().unwrap();
        let mut early = vec![0; 5];
        sock.read_exact(&mut early).unwrap();
        if whole {
            let len = usize::from(u16::from_be_bytes([early[3], early[4]]));
            let mut record = vec![0; len];
            sock.read_exact(&mut record).unwrap();
            early.extend_from_slice(&record);
        } else {
            let mut more = vec![0; 5];
            sock.read_exact(&mut more).unwrap();
            early.extend_from_slice(&more);
        }
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let tcp = compio::net::TcpStream::from_std(sock).unwrap();
            let conn = TlsConn::new(tcp, Some(server().0.clone())).unwrap();
            let mut inbuf = LazyBuf::new(64);
            conn.feed(&mut early, &mut inbuf).unwrap();
            conn.handshake(&mut inbuf).await.unwrap();
            conn.with_server_name(|name| assert_eq!(name, Some(NAME)));
            while inbuf.bytes().len() < 18 {
                assert!(conn.read_plain(&mut inbuf, true).await.unwrap() > 0);
            }
            assert_eq!(inbuf.bytes(), b"GET / HTTP/1.1\r\n\r\n");
            assert!(conn.traffic().0 > early.len() as u64);
            conn.write_plain(b"hello").unwrap();
            conn.flush().await.unwrap();
        });
        assert_eq!(client.join().unwrap(), b"hello", "whole: {whole}");
    }
}

/// Bytes that are not TLS, fed first, fail the session as a first receive would.
#[test]
fn garbage_fed_first_fails_the_session() {
    use super::TlsConn;
    use crate::buf::LazyBuf;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _client = std::net::TcpStream::connect(addr).unwrap();
    let (sock, _) = listener.accept().unwrap();
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tcp = compio::net::TcpStream::from_std(sock).unwrap();
        let conn = TlsConn::new(tcp, Some(server().0.clone())).unwrap();
        let mut inbuf = LazyBuf::new(64);
        let mut garbage = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        assert!(conn.feed(&mut garbage, &mut inbuf).is_err());
    });
}

/// On a plain-HTTP listener (the identity layer), bytes fed first are the request's start.
#[test]
fn bytes_fed_to_a_plain_connection_are_plaintext() {
    use super::TlsConn;
    use crate::buf::LazyBuf;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _client = std::net::TcpStream::connect(addr).unwrap();
    let (sock, _) = listener.accept().unwrap();
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tcp = compio::net::TcpStream::from_std(sock).unwrap();
        let conn = TlsConn::new(tcp, None).unwrap();
        let mut inbuf = LazyBuf::new(64);
        let mut early = b"GET / HTTP/1.1\r\n".to_vec();
        conn.feed(&mut early, &mut inbuf).unwrap();
        conn.handshake(&mut inbuf).await.unwrap();
        assert_eq!(inbuf.bytes(), b"GET / HTTP/1.1\r\n");
        assert_eq!(conn.traffic().0, 16);
    });
}
