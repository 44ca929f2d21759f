//! The RegNakes simulator on its own, so a hub in another process can be measured alone:
//! `regnakes-sim [PEOPLE] [LISTEN]` (defaults 5000 and 127.0.0.1:8091). It prints its base
//! URL, OAuth2 client id and client secret, then serves until killed.

use hub_sim::{RegnakesConfig, RegnakesSim};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let people = match args.next() {
        Some(n) => n
            .parse()
            .map_err(|_| anyhow::anyhow!("PEOPLE must be a whole number, got {n:?}"))?,
        None => 5_000,
    };
    let listen = match args.next() {
        Some(addr) => addr
            .parse()
            .map_err(|_| anyhow::anyhow!("LISTEN must be an address such as 127.0.0.1:8091, got {addr:?}"))?,
        None => "127.0.0.1:8091".parse()?,
    };
    let config = RegnakesConfig {
        people,
        ..RegnakesConfig::default()
    };
    let sim = RegnakesSim::new(config.clone());
    // Serves until the process is killed (the server stops when this is dropped).
    let serving = hub_sim::serve(sim.router(), listen).await?;
    println!("{} {} {}", serving.base_url(), config.client_id, config.client_secret);
    std::future::pending::<()>().await;
    Ok(())
}
