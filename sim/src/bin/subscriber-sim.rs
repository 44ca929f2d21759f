//! A webhook subscriber on its own, accepting every delivery, so a hub in another process
//! can be measured delivering to it: `subscriber-sim [LISTEN]` (default 127.0.0.1:8092). It
//! prints its base URL, then serves until killed.

use hub_sim::subscriber::SubscriberSim;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = match std::env::args().nth(1) {
        Some(addr) => addr
            .parse()
            .map_err(|_| anyhow::anyhow!("LISTEN must be an address such as 127.0.0.1:8092, got {addr:?}"))?,
        None => "127.0.0.1:8092".parse()?,
    };
    let serving = hub_sim::serve(SubscriberSim::new().router(), listen).await?;
    println!("{}", serving.base_url());
    std::future::pending::<()>().await;
    Ok(())
}
