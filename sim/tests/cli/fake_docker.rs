//! A Docker daemon that answers but has no image and no registry: `GET /_ping` is `200 OK`,
//! every other request (inspect, create, pull) `404` with Docker's JSON error — how a
//! daemon looks when the image cannot be pulled. Serves on a loopback port in a thread for
//! the life of the test process; point `DOCKER_HOST=tcp://…` at it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

/// The message every refused request carries.
pub const REFUSAL: &str = "pull access denied: no registry reachable (fake daemon)";

/// Starts the daemon and returns its `DOCKER_HOST` value.
pub fn start() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("bound");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = serve(stream);
            });
        }
    });
    format!("tcp://{addr}")
}

/// One request, one answer, then the connection closes.
fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let (status, content_type, body) = if path.ends_with("/_ping") {
        ("200 OK", "text/plain", "OK".to_owned())
    } else {
        (
            "404 Not Found",
            "application/json",
            format!("{{\"message\":\"{REFUSAL}\"}}"),
        )
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nApi-Version: 1.43\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
