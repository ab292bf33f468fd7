//! Serve a twin from Rust, the way the factory embeds one: start it on a free loopback port,
//! print its URL, stop on Ctrl-C.
//!
//! `cargo run -p lightsout-twin --example serve -- slack [PORT]` (a built-in name or a
//! directory with twin.yaml).

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example program prints by design

use lightsout_twin::{TwinOptions, TwinServer};
use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "slack".into());
    let port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(0);
    let twin = lightsout_twin::load(
        &name,
        TwinOptions {
            latency: false,
            ..TwinOptions::default()
        },
        std::path::Path::new(".lightsout/twins"),
        false,
    )?;
    let server = TwinServer::start(vec![twin], SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("{}", server.url());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
