//! The client used directly, as an administrator would: list every lock on a
//! Relukko server, and force-release one.
//!
//! ```sh
//! # Runs anywhere: starts a throwaway server in this process, with demo locks.
//! cargo run -p relukko-examples --example admin
//!
//! # Against a real server: list the locks, and force-release `hil-rig-3`.
//! RELUKKO_URL=https://relukko.example.com RELUKKO_API_KEY=... \
//!     cargo run -p relukko-examples --example admin -- hil-rig-3
//! ```
//!
//! A force-release is a plain `DELETE`: the protocol has no ownership check.
//! The test that held the lock notices at its next heartbeat and fails with a
//! "lock lost" message, so do this only for a lock whose holder is gone.

use relukko::{Client, Create, Lock};

#[tokio::main(flavor = "current_thread")]
async fn main() -> relukko::Result<()> {
    let to_release = std::env::args().nth(1);

    // RELUKKO_URL (or RELUKKO_BASE_URL) set: that server, configured from the environment (URL,
    // RELUKKO_API_KEY, CA bundles, timeouts). Unset: our own server.
    let (client, _server, to_release) = if ["RELUKKO_URL", "RELUKKO_BASE_URL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
    {
        (Client::from_env()?, None, to_release)
    } else {
        let server = relukko_server::TestServer::start();
        println!(
            "RELUKKO_URL is not set: using a throwaway server at {}",
            server.base_url()
        );
        let client = Client::builder(server.base_url())
            .api_key(server.api_key())
            .creator("admin example")
            .build()?;
        for name in ["demo-rig-1", "demo-rig-2", "demo-staging-db"] {
            if let Create::Taken = client.create(name, Some("ci-runner-7 / job 81234")).await? {
                println!("{name} was already taken");
            }
        }
        (
            client,
            Some(server),
            Some(to_release.unwrap_or_else(|| "demo-rig-2".to_owned())),
        )
    };

    client.health().await?;
    print_locks(&client.list().await?);

    if let Some(name) = to_release {
        // Look the lock up by name, then delete it by id.
        match client.holder(&name).await? {
            Some(lock) => {
                let gone = client.delete(lock.id).await?;
                let by = gone
                    .creator
                    .as_deref()
                    .map(relukko::creator_without_token)
                    .unwrap_or("-");
                println!("\nforce-released {} (it was held by {by})", gone.lock_name);
            }
            None => println!("\nno lock named {name:?}: nothing to release"),
        }
        print_locks(&client.list().await?);
    }
    Ok(())
}

fn print_locks(locks: &[Lock]) {
    println!("\n{} lock(s):", locks.len());
    for l in locks {
        let creator = l
            .creator
            .as_deref()
            .map(relukko::creator_without_token)
            .unwrap_or("-");
        println!(
            "  {:<20} held by {:<28} from {:<15} expires {}",
            l.lock_name,
            creator,
            l.ip.as_deref().unwrap_or("-"),
            relukko::format_timestamp(l.expires_at)
        );
    }
}
