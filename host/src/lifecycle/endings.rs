//! Who wants to know when a job ends: every terminal transition announces the job's id on
//! [`Keys::ended`] (inside the transition's own script), and [`Endings`] relays those
//! announcements to the waiters of this process (`Prefer: wait` on `POST /v1/jobs`).
//!
//! A missed announcement (a reconnect) costs a waiter only its next re-read of the record,
//! which waiters do at least once a second.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::Keys;

pub struct Endings {
    tx: broadcast::Sender<Uuid>,
}

impl Endings {
    /// Subscribes to the deployment's job endings, reconnecting as needed, for as long as the
    /// process runs.
    pub fn listen(client: redis::Client, keys: &Keys) -> Arc<Self> {
        let (tx, _) = broadcast::channel(1024);
        let endings = Arc::new(Self { tx });
        let channel = keys.ended();
        let relay = endings.tx.clone();
        tokio::spawn(async move {
            loop {
                match subscribe(&client, &channel).await {
                    Ok(mut messages) => {
                        while let Some(message) = messages.next().await {
                            let text: String = message.get_payload().unwrap_or_default();
                            if let Ok(id) = text.parse() {
                                let _ = relay.send(id);
                            }
                        }
                        tracing::warn!("lost the job endings subscription; reconnecting");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot subscribe to job endings; retrying")
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        endings
    }

    /// Every job that ends from now on, by id.
    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.tx.subscribe()
    }
}

async fn subscribe(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<impl futures::Stream<Item = redis::Msg> + use<>> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub.into_on_message())
}
