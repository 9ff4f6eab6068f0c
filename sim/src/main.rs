//! `tickgate-sim`: today it provisions a Redis the way tests do and reports where it came
//! from (`tickgate-sim redis`); the simulator (`tickgate-sim run`) lands with issue 5.

use std::process::ExitCode;

use tickgate_sim::RedisServer;

const USAGE: &str = "usage: tickgate-sim redis\n\
    provisions a Redis as tests do (TICKGATE_REDIS=auto|url|container|process), pings it,\n\
    prints where it came from, and removes it again";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args != ["redis"] {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    match RedisServer::from_env().await {
        Ok(server) => {
            println!("redis ready: {}", server.source());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tickgate-sim: {e}");
            ExitCode::from(1)
        }
    }
}
